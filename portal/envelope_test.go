package portal

import (
	"encoding/json"
	"testing"
)

func TestEnvelopeMalformedFields(t *testing.T) {
	for _, tc := range []struct {
		name, event, want string
	}{
		{"text body", `{"type":"m.room.message","content":{"body":"hi"}}`, ""},
		{"numeric body", `{"type":"m.room.message","content":{"body":42}}`, "body"},
		{"object body of a sticker", `{"type":"m.sticker","content":{"body":{"a":1}}}`, "body"},
		{"stray numeric body on a reaction", `{"type":"m.reaction","content":{"body":42}}`, ""},
		{"numeric room name", `{"type":"m.room.name","state_key":"","content":{"name":5}}`, "name"},
		{"list topic", `{"type":"m.room.topic","state_key":"","content":{"topic":["x"]}}`, "topic"},
		{"boolean membership", `{"type":"m.room.member","state_key":"@a:b","content":{"membership":true}}`, "membership"},
		{"null body", `{"type":"m.room.message","content":{"body":null}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env MatrixEnvelope
			if err := json.Unmarshal([]byte(tc.event), &env); err != nil {
				t.Fatalf("the envelope does not decode: %v", err)
			}
			if got := env.malformedField(); got != tc.want {
				t.Errorf("malformed field = %q, want %q", got, tc.want)
			}
		})
	}
	var env MatrixEnvelope
	if err := json.Unmarshal([]byte(`{"type":"m.room.member","content":{"membership":"join","body":"x"}}`), &env); err != nil ||
		env.Content.Membership != "join" || env.Content.Body != "x" {
		t.Errorf("well-formed content = %+v, %v", env.Content, err)
	}
}
