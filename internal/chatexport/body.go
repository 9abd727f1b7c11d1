package chatexport

import (
	"regexp"
	"strings"
	"time"
)

// pending is a message whose continuation lines are still being collected.
type pending struct {
	msg   Message
	lines []string
}

// bidiMarks are the invisible direction marks iOS wraps around names, phone
// numbers and media markers; they are not part of what anyone typed.
var bidiMarks = strings.NewReplacer("\u200E", "", "\u200F", "", "\u202A", "", "\u202B", "",
	"\u202C", "", "\u202D", "", "\u202E", "", "\u2066", "", "\u2067", "", "\u2068", "", "\u2069", "")

func newPending(h *header, t time.Time) *pending {
	p := &pending{msg: Message{Time: t, Line: h.line}}
	body := h.rest
	// A sender name never contains quotes, but Android system lines quote
	// subjects that may contain ": " ("changed the subject to "a: b"").
	if i := strings.Index(body, ": "); i > 0 && !strings.ContainsAny(body[:i], `"“”«»`) {
		p.msg.Sender = strings.TrimSpace(bidiMarks.Replace(body[:i]))
		body = body[i+2:]
	} else {
		p.msg.System = true
	}
	iosMarked := strings.HasPrefix(body, "\u200E")
	first := strings.TrimLeft(body, "\u200E\u200F")
	switch name, omitted := attachment(first); {
	case omitted:
		// The marker is not text anyone wrote; a caption on following lines is.
		p.msg.Omitted = true
		return p
	case name != "":
		p.msg.Attachment = name
		return p
	}
	if iosMarked && p.msg.Sender != "" {
		// iOS attributes group events and the encryption notice to the chat
		// itself and marks their text; no person sent them. iOS marks its
		// "This message was deleted" notices the same way, so those count as
		// system lines too: they carry no content to import.
		p.msg.System = true
		p.msg.Sender = ""
	}
	p.lines = append(p.lines, first)
	return p
}

func (p *pending) finish() Message {
	m := p.msg
	m.Text = strings.Join(p.lines, "\n")
	return m
}

// attachedRE covers iOS ("<attached: NAME>") in the languages we support.
var attachedRE = regexp.MustCompile(`^<(?:attached|Anhang|pièce jointe|bijgevoegd|adjunto|archivo adjunto) ?: ?(.+)>$`)

// fileAttachedRE covers Android ("NAME (file attached)").
var fileAttachedRE = regexp.MustCompile(`^(.+?) \((?:file attached|Datei angehängt|fichier joint|bestand bijgevoegd|archivo adjunto)\)$`)

// omittedMarkers are what exports write instead of media left out: Android's
// bracketed form and iOS's "<kind> omitted" form, per language.
var omittedMarkers = []string{
	"<Media omitted>", "<Medien ausgeschlossen>", "<Médias omis>", "<Media weggelaten>", "<Multimedia omitido>",
	"image omitted", "video omitted", "audio omitted", "sticker omitted", "GIF omitted", "document omitted",
	"Contact card omitted",
	"Bild weggelassen", "Video weggelassen", "Audio weggelassen", "Sticker weggelassen", "GIF weggelassen",
	"Dokument weggelassen",
	"image absente", "vidéo absente", "audio omis", "sticker omis", "GIF retiré",
	"afbeelding weggelaten", "video weggelaten", "audio weggelaten", "sticker weggelaten", "GIF weggelaten",
	"imagen omitida", "video omitido", "audio omitido", "sticker omitido", "GIF omitido",
}

// attachment recognises a media marker as the whole first line of a message.
func attachment(line string) (name string, omitted bool) {
	line = strings.TrimSpace(line)
	for _, m := range omittedMarkers {
		if strings.EqualFold(line, m) {
			return "", true
		}
	}
	if m := attachedRE.FindStringSubmatch(line); m != nil {
		return strings.TrimSpace(bidiMarks.Replace(m[1])), false
	}
	if m := fileAttachedRE.FindStringSubmatch(line); m != nil {
		return strings.TrimSpace(bidiMarks.Replace(m[1])), false
	}
	return "", false
}
