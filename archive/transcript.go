package archive

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"
)

// The transcript is a view of the entries, rendered deterministically (UTC, stable order, no clock) so
// VerifyBundle can regenerate it and prove it says what the verified entries say.

//go:embed transcript.gohtml
var transcriptSource string

var transcriptTemplate = template.Must(template.New("transcript").Parse(transcriptSource))

type transcriptEntry struct {
	Index    uint64
	Entry    *Entry // nil: disposed
	Captured time.Time
}

type transcriptHeader struct {
	Origin     string
	Checkpoint *Checkpoint
	Filter     ExportRecord
}

type transcriptView struct {
	Origin   string
	Size     uint64
	Root     string
	Filter   string
	Entries  int
	Chats    []*chatView
	Ledger   []*itemView
	Disposed string
}

type chatView struct {
	JID    string
	Name   string
	Anchor string
	Items  []*itemView
}

type itemView struct {
	Index    uint64
	Time     string
	Sender   string
	From     string // sender JID
	Class    string // message, outbound, event
	Text     string
	Event    string
	Media    []mediaView
	Notes    []noteView
	Revoked  bool
	Hidden   bool // deleted for me
	Edited   bool
	Captured string
}

type mediaView struct {
	Href    string
	Name    string
	Image   bool
	Present bool
}

type noteView struct {
	Index uint64
	Class string
	Time  string
	Text  string
}

const transcriptTimeFormat = "2006-01-02 15:04:05 UTC"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(transcriptTimeFormat)
}

func renderTranscript(h transcriptHeader, entries []transcriptEntry, present map[string]bool) ([]byte, error) {
	v := &transcriptView{
		Origin: h.Origin, Size: h.Checkpoint.Size, Root: base64.StdEncoding.EncodeToString(h.Checkpoint.Root),
		Filter: describeFilter(h.Filter), Entries: len(entries),
	}
	names := senderNames(entries)
	chats := map[string]*chatView{}
	targets := map[string]*itemView{} // chat + "\x00" + message ID
	var disposed []uint64
	for _, te := range entries {
		e := te.Entry
		if e == nil {
			disposed = append(disposed, te.Index)
			continue
		}
		when := fmtTime(eventTime(e, te.Captured))
		item := &itemView{Index: te.Index, Time: when, Sender: names.of(e.Sender, e.SenderName), From: e.Sender,
			Class: "event", Captured: fmtTime(te.Captured)}
		if e.Chat == "" {
			item.Event = describeEvent(e, names)
			v.Ledger = append(v.Ledger, item)
			continue
		}
		cv := chats[e.Chat]
		if cv == nil {
			cv = &chatView{JID: e.Chat}
			chats[e.Chat] = cv
		}
		if e.ChatName != "" {
			cv.Name = e.ChatName
		}
		target := func() *itemView {
			if e.Target == nil {
				return nil
			}
			return targets[e.Chat+"\x00"+e.Target.MessageID]
		}
		note := func(t *itemView, class, text string) bool {
			if t == nil {
				return false
			}
			t.Notes = append(t.Notes, noteView{Index: te.Index, Class: class, Time: when, Text: text})
			return true
		}
		switch e.Kind {
		case KindMessage, KindOutboundSend, KindStatus, KindMatrixMessage:
			item.Class = "message"
			if e.Kind == KindOutboundSend || e.Kind == KindMatrixMessage {
				item.Class = "outbound"
				if e.Outbound != nil && e.Outbound.MatrixSender != "" {
					item.Sender += " (via Matrix, " + e.Outbound.MatrixSender + ")"
				}
			}
			if e.Message != nil {
				item.Text = e.Message.Text
				switch {
				case e.Kind == KindStatus:
					item.Text = "(status update) " + item.Text
				case e.Broadcast != "":
					item.Text = "(broadcast) " + item.Text
				case e.Kind == KindMatrixMessage && e.Outbound != nil:
					item.Text = "(not relayed to WhatsApp: " + e.Outbound.Error + ") " + item.Text
				}
				item.Media = mediaViews(e.Message.Media, present)
			}
			if e.MessageID != "" {
				targets[e.Chat+"\x00"+e.MessageID] = item
			}
			cv.Items = append(cv.Items, item)
			continue
		case KindEdit:
			text := ""
			if e.Message != nil {
				text = e.Message.Text
			}
			if t := target(); t != nil {
				t.Edited = true
				note(t, "edit", "Edited by "+item.Sender+" to: "+text)
				continue
			}
			item.Event = "Edit by " + item.Sender + " of a message not in this export (" + e.Target.MessageID + "): " + text
		case KindRevoke:
			if t := target(); t != nil {
				t.Revoked = true
				note(t, "deleted", "Deleted for everyone by "+item.Sender+". The original is kept above.")
				continue
			}
			item.Event = "Deleted for everyone by " + item.Sender + ": a message not in this export (" + targetID(e) + ")"
		case KindDeleteForMe:
			if t := target(); t != nil {
				t.Hidden = true
				note(t, "deleted", "Deleted for me on "+names.of(e.Account, "")+"'s devices. The original is kept above.")
				continue
			}
			item.Event = "Deleted for me: a message not in this export (" + targetID(e) + ")"
		case KindReaction:
			text := "Reacted " + e.Reaction
			if e.Reaction == "" {
				text = "Removed their reaction"
			}
			if note(target(), "reaction", item.Sender+": "+text) {
				continue
			}
			item.Event = item.Sender + ": " + text + " to a message not in this export (" + targetID(e) + ")"
		case KindMediaBackfill:
			// History media fetched after the message was archived with a placeholder: the
			// reader sees it on the message itself.
			if t := target(); t != nil && e.Message != nil {
				t.Media = append(t.Media, mediaViews(e.Message.Media, present)...)
				note(t, "media", "Media fetched from WhatsApp after the message was archived")
				continue
			}
			item.Event = "Media fetched later for a message not in this export (" + targetID(e) + ")"
		case KindOutboundResult:
			text := "Send result"
			if e.Outbound != nil {
				text = "Send " + e.Outbound.Status
				if e.Outbound.Error != "" {
					text += ": " + e.Outbound.Error
				}
			}
			if note(target(), "result", text) {
				continue
			}
			item.Event = text + " for a message not in this export (" + targetID(e) + ")"
		case KindReceipt:
			attached := false
			if e.Receipt != nil {
				for _, id := range e.Receipt.MessageIDs {
					if t := targets[e.Chat+"\x00"+id]; t != nil {
						attached = note(t, "receipt", strings.TrimSpace(e.Receipt.Type+" by "+item.Sender)) || attached
					}
				}
			}
			if attached {
				continue
			}
			item.Event = describeEvent(e, names)
		default:
			item.Event = describeEvent(e, names)
		}
		cv.Items = append(cv.Items, item)
	}
	for _, cv := range chats {
		if cv.Name == "" {
			cv.Name = names.of(cv.JID, "")
		}
		cv.Anchor = "chat-" + strings.NewReplacer("@", "-", ".", "-").Replace(cv.JID)
		v.Chats = append(v.Chats, cv)
	}
	sort.Slice(v.Chats, func(i, j int) bool { return v.Chats[i].JID < v.Chats[j].JID })
	if len(disposed) > 0 {
		var parts []string
		for _, r := range toRanges(disposed) {
			if r.End == r.Start+1 {
				parts = append(parts, fmt.Sprint(r.Start))
			} else {
				parts = append(parts, fmt.Sprintf("%d–%d", r.Start, r.End-1))
			}
		}
		v.Disposed = strings.Join(parts, ", ")
	}
	var buf bytes.Buffer
	if err := transcriptTemplate.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func targetID(e *Entry) string {
	if e.Target == nil {
		return "unknown message"
	}
	return e.Target.MessageID
}

func shortHash(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// nameBook resolves JIDs to the display names the entries carried.
type nameBook map[string]string

func senderNames(entries []transcriptEntry) nameBook {
	nb := nameBook{}
	for _, te := range entries {
		if te.Entry != nil && te.Entry.Sender != "" && te.Entry.SenderName != "" {
			nb[te.Entry.Sender] = te.Entry.SenderName
		}
	}
	return nb
}

func (nb nameBook) of(jid, given string) string {
	if given != "" {
		return given
	}
	if n := nb[jid]; n != "" {
		return n
	}
	if jid == "" {
		return "unknown"
	}
	if user, _, ok := strings.Cut(jid, "@"); ok && !strings.HasSuffix(jid, "@g.us") {
		return "+" + user
	}
	return jid
}

func describeEvent(e *Entry, names nameBook) string {
	who := names.of(e.Sender, e.SenderName)
	reason := ""
	if e.Completeness != nil && e.Completeness.Reason != "" {
		reason = " (" + e.Completeness.Reason + ")"
	}
	switch e.Kind {
	case KindGroupMembership:
		if e.Group == nil {
			return who + " changed the membership"
		}
		var ps []string
		for _, p := range e.Group.Participants {
			ps = append(ps, names.of(p, ""))
		}
		list := strings.Join(ps, ", ")
		switch e.Group.Action {
		case "add":
			return who + " added " + list
		case "remove":
			return who + " removed " + list
		case "join":
			return strings.TrimSpace(list + " joined")
		case "leave":
			return strings.TrimSpace(list + " left")
		case "promote":
			return who + " made " + list + " admin"
		case "demote":
			return who + " removed admin rights from " + list
		}
		return who + ": " + e.Group.Action + " " + list
	case KindCall:
		media := "call"
		if e.Call != nil && e.Call.Media != "" {
			media = e.Call.Media + " call"
		}
		return "WhatsApp " + media + " from " + who + ", not answerable through the bridge"
	case KindGroupSubject:
		if e.Group == nil {
			return who + " changed the subject"
		}
		return who + " set the subject to “" + e.Group.Subject + "”"
	case KindChatDelete:
		return "The chat was deleted on " + names.of(e.Account, "") + "'s phone. The archive keeps everything above."
	case KindReceipt:
		if e.Receipt == nil {
			return "Receipt from " + who
		}
		return fmt.Sprintf("%s receipt from %s for %d message(s) not in this export", e.Receipt.Type, who, len(e.Receipt.MessageIDs))
	case KindUndecryptable:
		return "A message from " + who + " could not be decrypted (" + e.MessageID + "): its content was not captured"
	case KindRedactionTargetMissing:
		what := e.MessageID
		if e.Outbound != nil && e.Outbound.MatrixEventID != "" {
			what = e.Outbound.MatrixEventID
		}
		return who + " deleted a message in Matrix (" + what + ") before it reached the bridge: its content was not captured, and it was not sent to WhatsApp"
	case KindHistorySync:
		if e.Completeness != nil {
			return fmt.Sprintf("History sync received messages from %s to %s%s", fmtTime(e.Completeness.From), fmtTime(e.Completeness.To), reason)
		}
		return "History sync" + reason
	case KindConnected:
		return names.of(e.Account, "") + " connected to WhatsApp" + reason
	case KindDisconnected:
		return names.of(e.Account, "") + " disconnected from WhatsApp: nothing was captured until it reconnected" + reason
	case KindLoggedOut:
		return names.of(e.Account, "") + " was logged out of WhatsApp: nothing was captured until it logged in again" + reason
	case KindArchiveStarted:
		return "Archive started" + reason
	case KindArchiveStopped:
		return "Archive stopped"
	case KindHoldAdded:
		if e.Hold != nil {
			return fmt.Sprintf("Legal hold placed by %s on %s %s: %s", e.Actor, e.Hold.Scope, e.Hold.JID, e.Hold.Reason)
		}
	case KindHoldRemoved:
		if e.Hold != nil {
			return fmt.Sprintf("Legal hold %d lifted by %s: %s", e.Hold.ID, e.Actor, e.Hold.Reason)
		}
	case KindDisposal:
		if e.Disposal != nil {
			var n uint64
			for _, r := range e.Disposal.Entries {
				n += r.End - r.Start
			}
			return fmt.Sprintf("Disposal by %s of %d entries from before %s past retention (%d kept by legal hold)", e.Actor, n, fmtTime(e.Disposal.Before), e.Disposal.Held)
		}
	case KindExport:
		if e.Export != nil {
			return "Export by " + e.Actor + ": " + describeFilter(*e.Export)
		}
	}
	return string(e.Kind) + " " + who
}

func describeFilter(f ExportRecord) string {
	var parts []string
	if f.Chat != "" {
		parts = append(parts, "chat "+f.Chat)
	}
	if f.User != "" {
		parts = append(parts, "user "+f.User)
	}
	if !f.From.IsZero() {
		parts = append(parts, "from "+fmtTime(f.From))
	}
	if !f.To.IsZero() {
		parts = append(parts, "until "+fmtTime(f.To))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, ", ")
}

// mediaViews links a message's media to the bundle's media directory.
func mediaViews(media []MediaRef, present map[string]bool) []mediaView {
	var out []mediaView
	for _, m := range media {
		name := m.FileName
		if name == "" {
			name = m.MimeType + " " + shortHash(m.SHA256)
		}
		out = append(out, mediaView{Href: "media/" + m.SHA256, Name: name,
			Image: strings.HasPrefix(m.MimeType, "image/"), Present: present[m.SHA256] && validSHA256Hex(m.SHA256)})
	}
	return out
}
