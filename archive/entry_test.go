package archive

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// fullEntry sets every field, so the key-order test sees every key.
func fullEntry() *Entry {
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	return &Entry{
		Account: account, Actor: "a", Chat: group, ChatName: "c", Kind: KindMessage, MessageID: "m", Reaction: "r",
		Sender: alice, SenderName: "s", Time: at,
		Completeness: &Completeness{From: at, Reason: "r", To: at},
		Disposal: &Disposal{Before: at, Entries: []IndexRange{{Start: 1, End: 2}}, Held: 1, Media: []string{"x"},
			Rules: []RuleCount{{Entries: 1, Rule: "r"}}},
		Export: &ExportRecord{Chat: "c", From: at, To: at, User: "u"},
		Group:  &GroupChange{Action: "add", Participants: []string{bob}, Subject: "s"},
		Hold:   &HoldRecord{ID: 1, JID: bob, Reason: "r", Scope: HoldUser},
		Message: &Message{Media: []MediaRef{{FileName: "f", MimeType: "m", SHA256: "h", Size: 1}}, Proto: []byte{1, 2, 255},
			ReplyTo: "r", Text: "t <&> \u2028", Type: "text"},
		Outbound: &Outbound{Error: "e", MatrixEventID: "$e", MatrixRoomID: "!r", MatrixSender: "@s", Status: "sent"},
		Receipt:  &Receipt{MessageIDs: []string{"m"}, Type: "read"},
		Target:   &Target{MessageID: "m", Sender: bob},
	}
}

// canonical re-encodes JSON through maps, which encoding/json writes with sorted keys.
func canonical(t *testing.T, data []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEncodingIsCanonical(t *testing.T) {
	data, err := encodeEntry(fullEntry())
	if err != nil {
		t.Fatal(err)
	}
	if got := canonical(t, data); !bytes.Equal(got, data) {
		t.Fatalf("entry encoding is not in sorted-key form:\n got %s\nwant %s", data, got)
	}
	captured := time.Date(2026, 5, 1, 10, 0, 0, 5, time.UTC)
	body := buildBody(data, captured, 42, bytes.Repeat([]byte{0xab}, 32))
	if got := canonical(t, body); !bytes.Equal(got, body) {
		t.Fatalf("envelope is not in sorted-key form:\n got %s\nwant %s", body, got)
	}
	std, _ := json.Marshal(envelope{Captured: captured, Entry: data, Index: 42, Prev: string(bytes.Repeat([]byte("ab"), 32)), V: bodyVersion})
	if !bytes.Equal(std, body) {
		t.Fatalf("hand-built envelope differs from encoding/json's:\n got %s\nwant %s", body, std)
	}
	dec, err := decodeBody(body)
	if err != nil || dec.Index != 42 || dec.Entry.Message.Text != fullEntry().Message.Text {
		t.Fatalf("round trip: %+v %v", dec, err)
	}
	again, _ := encodeEntry(&dec.Entry)
	if !bytes.Equal(again, data) {
		t.Fatalf("decode then encode changes the bytes:\n got %s\nwant %s", again, data)
	}
}

func TestSameInstantSameBytes(t *testing.T) {
	a, b := fullEntry(), fullEntry()
	b.Time = b.Time.In(time.FixedZone("X", -5*3600))
	ea, _ := encodeEntry(a)
	eb, _ := encodeEntry(b)
	if !bytes.Equal(ea, eb) {
		t.Fatalf("one instant in two zones encodes differently:\n%s\n%s", ea, eb)
	}
}

func TestUnknownBodyVersionRefused(t *testing.T) {
	data, _ := encodeEntry(fullEntry())
	body := bytes.Replace(buildBody(data, t0, 1, nil), []byte(`"v":1`), []byte(`"v":2`), 1)
	if _, err := decodeBody(body); err == nil {
		t.Fatal("a body in an unknown format version was accepted")
	}
}

func otherKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}
