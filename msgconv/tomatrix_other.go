package msgconv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"maunium.net/go/mautrix/event"
)

// This file holds the WhatsApp kinds that are neither text nor media: locations, contacts, polls,
// invitations, calls and events.

// geoURI writes an RFC 5870 geo URI with the shortest exact decimal form of each coordinate.
func geoURI(lat, lon float64) string {
	b := make([]byte, 0, 32)
	b = append(b, "geo:"...)
	b = strconv.AppendFloat(b, lat, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, lon, 'f', -1, 64)
	return string(b)
}

func (c *toMatrix) location(m *waE2E.LocationMessage) error {
	var parts []string
	for _, s := range []string{m.GetName(), m.GetAddress()} {
		if s != "" {
			parts = append(parts, validUTF8(s))
		}
	}
	desc := strings.Join(parts, ", ")
	body := desc
	if body == "" {
		body = "Location"
	}
	if m.GetIsLive() {
		body = "Live location: " + body
	}
	if comment := m.GetComment(); comment != "" {
		body += "\n" + validUTF8(comment)
	}
	return c.geo(body, desc, m.GetDegreesLatitude(), m.GetDegreesLongitude(), m.GetContextInfo())
}

func (c *toMatrix) liveLocation(m *waE2E.LiveLocationMessage) error {
	body := "Live location"
	if caption := m.GetCaption(); caption != "" {
		body += ": " + validUTF8(caption)
	}
	if err := c.geo(body, "", m.GetDegreesLatitude(), m.GetDegreesLongitude(), m.GetContextInfo()); err != nil {
		return err
	}
	// Matrix has no live location that a bridge can update in place (MSC3489 beacons need the sharing
	// user's own state event), so each WhatsApp update becomes one location message.
	c.res.Note = "live location (sequence " + strconv.FormatInt(m.GetSequenceNumber(), 10) + ")"
	return nil
}

func (c *toMatrix) geo(body, desc string, lat, lon float64, ci *waE2E.ContextInfo) error {
	uri := geoURI(lat, lon)
	content := &MessageContent{
		MsgType: MsgLocation, Body: body, GeoURI: uri,
		Location: &LocationInfo{URI: uri, Description: desc}, Mentions: &Mentions{},
	}
	if err := c.reply(content, ci); err != nil {
		return err
	}
	c.res.Action = ActionMessage
	c.addEvent(event.EventMessage, content)
	return nil
}

// contacts bridges each vCard as a .vcf file, which Matrix clients offer to import; one event per card.
func (c *toMatrix) contacts(cards []*waE2E.ContactMessage, ci *waE2E.ContextInfo) error {
	if len(cards) == 0 {
		c.notice("Shared an empty contact list")
		return nil
	}
	c.res.Action = ActionMessage
	for i, card := range cards {
		name := validUTF8(card.GetDisplayName())
		if name == "" {
			name = "contact"
		}
		fileName := strings.NewReplacer("/", "_", "\\", "_").Replace(name) + ".vcf"
		vcard := []byte(card.GetVcard())
		content := &MessageContent{
			MsgType: MsgFile, Body: fileName, FileName: fileName, Mentions: &Mentions{},
			Info: &FileInfo{MimeType: "text/vcard", Size: uint64(len(vcard))},
		}
		if i == 0 {
			if err := c.reply(content, ci); err != nil {
				return err
			}
		}
		part := c.addEvent(event.EventMessage, content)
		c.res.Media = append(c.res.Media, &MediaTransfer{
			Part: part, Data: vcard, MimeType: "text/vcard", FileName: fileName, Size: uint64(len(vcard)), content: content,
		})
	}
	return nil
}

// pollAnswerID is the Matrix answer ID of a WhatsApp poll option: the hex of the SHA-256 of its name,
// which is exactly what WhatsApp votes carry, so votes map to answers without a lookup.
func pollAnswerID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func (c *toMatrix) pollStart(p *waE2E.PollCreationMessage) error {
	question := validUTF8(p.GetName())
	opts := p.GetOptions()
	content := &PollStartContent{
		PollStart: PollStart{
			Kind: PollKindDisclosed, MaxSelections: int(p.GetSelectableOptionsCount()),
			Question: PollText{Text: question}, Answers: make([]PollAnswer, len(opts)),
		},
		Mentions: &Mentions{},
	}
	if content.PollStart.MaxSelections <= 0 || content.PollStart.MaxSelections > len(opts) {
		// WhatsApp's 0 means "any number of options".
		content.PollStart.MaxSelections = max(len(opts), 1)
	}
	var fallback strings.Builder
	fallback.WriteString("Poll: ")
	fallback.WriteString(question)
	for i, o := range opts {
		name := validUTF8(o.GetOptionName())
		content.PollStart.Answers[i] = PollAnswer{ID: pollAnswerID(o.GetOptionName()), Text: name}
		fmt.Fprintf(&fallback, "\n%d. %s", i+1, name)
	}
	content.Text = fallback.String()
	if stanza := p.GetContextInfo().GetStanzaID(); stanza != "" {
		part, found, err := c.lookupPart(stanza, MainPart)
		if err != nil {
			return err
		}
		if found {
			content.RelatesTo = &RelatesTo{InReplyTo: &InReplyTo{EventID: part.EventID}}
		}
	}
	c.res.Action = ActionMessage
	c.addEvent(event.EventUnstablePollStart, content)
	return nil
}

func (c *toMatrix) pollVote(u *waE2E.PollUpdateMessage) error {
	target := u.GetPollCreationMessageKey().GetID()
	c.res.Target = target
	part, found, err := c.lookupPart(target, MainPart)
	if err != nil {
		return err
	}
	if !found {
		c.res.Action, c.res.Unbridged, c.res.UnbridgedAction = ActionNone, true, ActionPollVote
		c.res.Note = "vote in a poll that was not bridged"
		return nil
	}
	vote, err := c.r.DecryptPollVote(c.ctx, c.info, u)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			c.res.Action, c.res.Unbridged, c.res.UnbridgedAction = ActionNone, true, ActionPollVote
			c.res.Note = "vote in a poll whose secret is unknown"
			return nil
		}
		return fmt.Errorf("failed to decrypt vote in poll %s: %w", target, err)
	}
	answers := make([]string, len(vote.GetSelectedOptions()))
	for i, h := range vote.GetSelectedOptions() {
		answers[i] = hex.EncodeToString(h)
	}
	c.res.Action = ActionPollVote
	c.addEvent(event.EventUnstablePollResponse, &PollResponseContent{
		Response:  PollResponse{Answers: answers},
		RelatesTo: RelatesTo{RelType: RelReference, EventID: part.EventID},
	})
	return nil
}

func (c *toMatrix) pollSnapshot(p *waE2E.PollResultSnapshotMessage) error {
	var b strings.Builder
	b.WriteString("Poll results: ")
	b.WriteString(p.GetName())
	for _, v := range p.GetPollVotes() {
		fmt.Fprintf(&b, "\n%s: %d", v.GetOptionName(), v.GetOptionVoteCount())
	}
	return c.text(b.String(), p.GetContextInfo())
}

func (c *toMatrix) groupInvite(g *waE2E.GroupInviteMessage) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Invitation to join the WhatsApp group %q", g.GetGroupName())
	if exp := g.GetInviteExpiration(); exp > 0 {
		b.WriteString(" (expires ")
		b.WriteString(time.Unix(exp, 0).UTC().Format("2006-01-02 15:04 UTC"))
		b.WriteByte(')')
	}
	b.WriteString(". Accept it in WhatsApp on your phone.")
	if caption := g.GetCaption(); caption != "" {
		b.WriteString("\n\n")
		b.WriteString(caption)
	}
	return c.text(b.String(), g.GetContextInfo())
}

func (c *toMatrix) call(m *waE2E.Call) error {
	c.notice("Started a WhatsApp call. Answer it on your phone.")
	return nil
}

var callOutcomes = map[waE2E.CallLogMessage_CallOutcome]string{
	waE2E.CallLogMessage_CONNECTED:               "",
	waE2E.CallLogMessage_MISSED:                  "Missed ",
	waE2E.CallLogMessage_FAILED:                  "Failed ",
	waE2E.CallLogMessage_REJECTED:                "Declined ",
	waE2E.CallLogMessage_ACCEPTED_ELSEWHERE:      "Answered elsewhere: ",
	waE2E.CallLogMessage_ONGOING:                 "Ongoing ",
	waE2E.CallLogMessage_SILENCED_BY_DND:         "Silenced ",
	waE2E.CallLogMessage_SILENCED_UNKNOWN_CALLER: "Silenced ",
}

func (c *toMatrix) callLog(m *waE2E.CallLogMessage) error {
	kind := "voice call"
	if m.GetIsVideo() {
		kind = "video call"
	}
	text := callOutcomes[m.GetCallOutcome()] + kind
	text = strings.ToUpper(text[:1]) + text[1:]
	if d := m.GetDurationSecs(); d > 0 {
		text += " (" + (time.Duration(d) * time.Second).String() + ")"
	}
	c.notice(text)
	return nil
}

func (c *toMatrix) scheduledCall(m *waE2E.ScheduledCallCreationMessage) error {
	kind := "voice call"
	if m.GetCallType() == waE2E.ScheduledCallCreationMessage_VIDEO {
		kind = "video call"
	}
	when := time.UnixMilli(m.GetScheduledTimestampMS()).UTC().Format("2006-01-02 15:04 UTC")
	c.notice(fmt.Sprintf("Scheduled a %s %q for %s", kind, validUTF8(m.GetTitle()), when))
	return nil
}

func (c *toMatrix) eventMessage(m *waE2E.EventMessage) error {
	return c.text(eventText(m), m.GetContextInfo())
}

// eventText is an event message as text, for the message and for edits of it.
func eventText(m *waE2E.EventMessage) string {
	var b strings.Builder
	if m.GetIsCanceled() {
		b.WriteString("Canceled event: ")
	} else {
		b.WriteString("Event: ")
	}
	b.WriteString(m.GetName())
	if d := m.GetDescription(); d != "" {
		b.WriteString("\n")
		b.WriteString(d)
	}
	if start := m.GetStartTime(); start > 0 {
		b.WriteString("\nStarts: ")
		b.WriteString(time.Unix(start, 0).UTC().Format("2006-01-02 15:04 UTC"))
	}
	if end := m.GetEndTime(); end > 0 {
		b.WriteString("\nEnds: ")
		b.WriteString(time.Unix(end, 0).UTC().Format("2006-01-02 15:04 UTC"))
	}
	if loc := m.GetLocation(); loc != nil {
		b.WriteString("\nWhere: ")
		geo := ""
		if loc.DegreesLatitude != nil || loc.DegreesLongitude != nil {
			geo = geoURI(loc.GetDegreesLatitude(), loc.GetDegreesLongitude())
		}
		b.WriteString(strings.Join(nonEmpty(loc.GetName(), loc.GetAddress(), geo), ", "))
	}
	if link := m.GetJoinLink(); link != "" {
		b.WriteString("\nJoin: ")
		b.WriteString(link)
	}
	return b.String()
}

func nonEmpty(list ...string) []string {
	out := list[:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
