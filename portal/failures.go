package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// explainedError is an error with the words a room notice uses for it: the error itself is
// for the log, and its text is rarely fit for the people in the room.
type explainedError struct {
	err   error
	words string
}

func (e *explainedError) Error() string { return e.err.Error() }
func (e *explainedError) Unwrap() error { return e.err }

func explained(err error, words string) error { return &explainedError{err: err, words: words} }

// mediaDownloadFailure classifies a failed download of a Matrix user's media. What the
// homeserver says is not there, or will not give us, stays so: retrying it would hold every
// later message of the chat back for nothing. Everything else (the homeserver down or busy,
// the network) is worth another attempt.
func mediaDownloadFailure(err error, url id.ContentURIString) error {
	err = fmt.Errorf("failed to download the media from Matrix: %w", err)
	var words string
	switch status := httpStatus(err); {
	case errors.Is(err, mautrix.MNotFound) || status == http.StatusNotFound || status == http.StatusGone:
		words = fmt.Sprintf("its file is not on the homeserver (%s)", url)
	case errors.Is(err, mautrix.MTooLarge) || status == http.StatusRequestEntityTooLarge:
		words = fmt.Sprintf("its file is too large for the homeserver to hand to the bridge (%s)", url)
	case errors.Is(err, mautrix.MForbidden) || status == http.StatusForbidden:
		words = fmt.Sprintf("the homeserver does not let the bridge download its file (%s)", url)
	case status == http.StatusBadRequest:
		words = fmt.Sprintf("the homeserver refused its media URL %s", url)
	default:
		return err
	}
	return permanent(explained(err, words))
}

// httpStatus is the status of the homeserver's answer behind err, or 0 when it did not answer.
func httpStatus(err error) int {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		return httpErr.Response.StatusCode
	}
	var httpErrPtr *mautrix.HTTPError
	if errors.As(err, &httpErrPtr) && httpErrPtr.Response != nil {
		return httpErrPtr.Response.StatusCode
	}
	return 0
}

// failureWords says in words why an item failed, for the notice in the room. The people
// who read it did not write the bridge: a Go decoder's message ("json: cannot unmarshal
// string into Go struct field ...") tells them nothing.
func failureWords(cause error) string {
	var (
		ex        *explainedError
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(cause, &ex):
		return ex.words
	case errors.As(cause, &typeErr):
		field := jsonFieldName(typeErr.Field)
		if field == "" {
			return fmt.Sprintf("it is %s where %s was expected", jsonValueWords(typeErr.Value), goTypeWords(typeErr.Type))
		}
		return fmt.Sprintf("its field “%s” is %s where %s was expected", field, jsonValueWords(typeErr.Value), goTypeWords(typeErr.Type))
	case errors.As(cause, &syntaxErr):
		return "its content is not valid JSON"
	case errors.Is(cause, proto.Error):
		return "its content is damaged and cannot be read"
	}
	return cause.Error()
}

// jsonFieldName turns the decoder's path to a field ("content.MessageContent.m.relates_to")
// into the field's name in the event's content ("m.relates_to"): embedded Go structs, which
// are capitalised, and the content object itself are not part of what the sender wrote.
func jsonFieldName(path string) string {
	var parts []string
	for _, p := range strings.Split(path, ".") {
		if r, _ := utf8.DecodeRuneInString(p); unicode.IsUpper(r) {
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) > 1 && parts[0] == "content" {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

func jsonValueWords(value string) string {
	switch kind, _, _ := strings.Cut(value, " "); kind {
	case "string":
		return "text"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "a list"
	case "object":
		return "an object"
	}
	return value
}

func goTypeWords(t reflect.Type) string {
	if t == nil {
		return "something else"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "something else"
}

// describeMatrixEvent names the event a notice is about as its sender knows it ("your image
// “holiday.jpg”"). It reads the raw event loosely: the event may be the very one that did not
// decode.
func describeMatrixEvent(raw []byte) string {
	var evt struct {
		Type    string                     `json:"type"`
		Content map[string]json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &evt) != nil {
		return "message"
	}
	text := func(field string) string {
		var s string
		_ = json.Unmarshal(evt.Content[field], &s)
		return s
	}
	named := func(what, name string) string {
		if name = snippet(name); name == "" {
			return what
		}
		return what + " “" + name + "”"
	}
	if evt.Type == event.EventReaction.Type {
		var rel struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(evt.Content["m.relates_to"], &rel)
		return named("reaction", rel.Key)
	}
	return named(eventNoun(evt.Type, text("msgtype")), text("body"))
}

// eventNoun names a kind of Matrix event as its sender knows it ("image", "reaction"); msgtype
// is the content's, for m.room.message.
func eventNoun(eventType, msgtype string) string {
	switch eventType {
	case event.EventReaction.Type:
		return "reaction"
	case event.EventSticker.Type:
		return "sticker"
	case event.EventRedaction.Type:
		return "deletion"
	case event.EventUnstablePollStart.Type:
		return "poll"
	case event.EventUnstablePollResponse.Type:
		return "poll vote"
	case event.StateRoomName.Type:
		return "change of the room name"
	case event.StateTopic.Type:
		return "change of the room topic"
	case event.StateMember.Type:
		return "change of the room's members"
	}
	switch event.MessageType(msgtype) {
	case event.MsgImage:
		return "image"
	case event.MsgVideo:
		return "video"
	case event.MsgAudio:
		return "audio message"
	case event.MsgFile:
		return "file"
	case event.MsgLocation:
		return "location"
	}
	return "message"
}

// snippet is the beginning of a text, enough to recognise it by.
func snippet(s string) string {
	const maxRunes = 40
	s, _, cut := strings.Cut(strings.TrimSpace(s), "\n")
	if utf8.RuneCountInString(s) > maxRunes {
		s, cut = string([]rune(s)[:maxRunes]), true
	}
	if s = strings.TrimSpace(s); cut && s != "" {
		s += "…"
	}
	return s
}
