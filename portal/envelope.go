package portal

import (
	"encoding/json"
	"fmt"

	"maunium.net/go/mautrix/event"
)

// EnvelopeContent is the part of an event's content that routing reads. Any client can put
// any JSON in a content field, so a field that is not a string does not fail the decode
// (that would drop the event before anyone could tell its sender): it is left empty and
// named in Malformed, and the portal refuses the event with a notice and archives it.
type EnvelopeContent struct {
	Membership event.Membership
	Name       string
	Topic      string
	Body       string
	// Malformed lists the fields above whose value was not a string.
	Malformed []string
}

func (c *EnvelopeContent) UnmarshalJSON(data []byte) error {
	var raw struct {
		Membership json.RawMessage `json:"membership"`
		Name       json.RawMessage `json:"name"`
		Topic      json.RawMessage `json:"topic"`
		Body       json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = EnvelopeContent{}
	var membership string
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		into *string
	}{{"membership", raw.Membership, &membership}, {"name", raw.Name, &c.Name}, {"topic", raw.Topic, &c.Topic}, {"body", raw.Body, &c.Body}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		if err := json.Unmarshal(f.raw, f.into); err != nil {
			c.Malformed = append(c.Malformed, f.name)
		}
	}
	c.Membership = event.Membership(membership)
	return nil
}

// malformedField names the field that makes the event impossible to relay: one the event's
// type needs and that is not a string. A stray field the type does not use does not count.
func (e *MatrixEnvelope) malformedField() string {
	var needed string
	switch e.Type {
	case event.EventMessage.Type, event.EventSticker.Type:
		needed = "body"
	case event.StateRoomName.Type:
		needed = "name"
	case event.StateTopic.Type:
		needed = "topic"
	case event.StateMember.Type:
		needed = "membership"
	}
	for _, f := range e.Content.Malformed {
		if f == needed {
			return f
		}
	}
	return ""
}

// errMalformedField is why an event with a non-string field is not relayed.
func errMalformedField(field string) error {
	return fmt.Errorf("its %q is not text", field)
}
