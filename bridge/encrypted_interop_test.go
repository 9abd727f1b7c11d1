//go:build goolm

package bridge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/wasim"
)

// interopChat is a portal the interop flows run in.
type interopChat struct {
	name  string
	room  id.RoomID
	chat  types.JID       // the WhatsApp chat: the contact for a DM, the group
	from  *wasim.Phone    // the contact who writes from WhatsApp
	ghost id.UserID       // from's puppet
	all   []*wasim.Phone  // every phone that must receive what the Matrix user sends
	user  types.JID       // the Matrix user's own WhatsApp account
	first types.MessageID // the contact's first message in interopFromWhatsApp
}

// The shields matrix-js-sdk may show next to the puppets' messages, and why.
var puppetShields = map[string]string{
	"red/unknown_device": "the puppet has no device: the session belongs to the bridge bot's device",
}

// The shields matrix-js-sdk may show next to the bot's own messages.
var botShields = map[string]string{
	"red/unsigned_device": "Dendrite 0.13.8 wants a password to publish cross-signing keys, which the bot has not: its device stays unsigned",
	"none":                "the bot's device is cross-signed (a homeserver that lets an appservice publish its keys)",
}

// What matrix-js-sdk shows for a puppet's message with "exclude insecure devices" on.
var excludedOutcomes = map[string]string{
	"utd/UNKNOWN_SENDER_DEVICE": "the session's device is not a device of the sender (the puppet has none)",
}

// TestEncryptedInteropElementCrypto: the Matrix user is matrix-js-sdk with its Rust crypto
// (the crypto Element ships, interop/js), on a device it logged in and cross-signed the way
// Element does; the bridge shares keys only with cross-signed devices and requires
// encryption (yet relays Element's reactions and redactions, which Element never encrypts,
// instead of refusing them as plaintext). In an encrypted DM and an encrypted group portal,
// both ways: text, reply, edit, reaction, redaction and image. The js client decrypts every
// event the bridge sent, the phones get exactly what it sent, and the shields it shows are
// logged and checked against what is expected:
//
// An Element user reads every WhatsApp message, with a red shield "Encrypted by an unknown
// or deleted device": a puppet has no device of its own, its messages are encrypted by the
// bot's device, which is not the sender's. The bot's own notices carry "Encrypted by a device
// not verified by its owner" while the bot cannot cross-sign its device (Dendrite wants a
// password for that). With "exclude insecure devices" on, the puppets' messages do not
// decrypt at all.
func TestEncryptedInteropElementCrypto(t *testing.T) {
	start := time.Now()
	cfg := encryptedConfig(t, "sqlite", "alice_interop")
	cfg.Encryption.ShareWith = config.ShareWithCrossSignedOnly
	cfg.Encryption.Require = true // what deployments that forbid unencrypted rooms run
	startRelayBridge(t, cfg)
	alice := loginWithQR(t, cfg, "alice_interop", "4915559301", "Alice Interop")
	bot := cfg.BotUserID()
	js := startJSClient(t, alice.mx.UserID, "password-alice_interop", bot)
	t.Logf("js client's device %s ready (cross-signing ready: %v) after %s", js.ready.DeviceID, js.ready.CrossSigningReady, time.Since(start))
	if !js.ready.CrossSigningReady {
		t.Fatalf("the js client did not set up cross-signing; the bridge (share_with: cross_signed_only) would not share keys with it")
	}
	bob := newPhone(t, "4915559302", "Bob Interop")
	carol := newPhone(t, "4915559303", "Carol Interop")
	bobGhost := cfg.PuppetUserID("4915559302")
	ctx := context.Background()

	if _, err := bob.SendText(ctx, alice.phone.JID(), "dm: first"); err != nil {
		t.Fatal(err)
	}
	dm := &interopChat{name: "dm", room: js.waitInvite(t, bobGhost), chat: alice.phone.JID(), from: bob, ghost: bobGhost,
		all: []*wasim.Phone{bob}, user: alice.phone.JID()}
	js.waitEvent(t, dm.room, bobGhost, "the DM's first message", func(e *jsEvent) bool { return e.body() == "dm: first" })

	group, err := bob.CreateGroup(ctx, "Interop crew", alice.phone.JID(), carol.JID())
	if err != nil {
		t.Fatal(err)
	}
	grp := &interopChat{name: "group", room: js.waitInvite(t, bot), chat: group.JID, from: bob, ghost: bobGhost,
		all: []*wasim.Phone{bob, carol}, user: alice.phone.JID()}
	// Carol's message in the group first, so Bob's flows start in a room with both puppets.
	if _, err := carol.SendText(ctx, group.JID, "group: carol says hi"); err != nil {
		t.Fatal(err)
	}
	js.waitEvent(t, grp.room, cfg.PuppetUserID("4915559303"), "carol's message", func(e *jsEvent) bool { return e.body() == "group: carol says hi" })
	t.Logf("both portals joined after %s", time.Since(start))

	for _, c := range []*interopChat{dm, grp} {
		t.Run(c.name, func(t *testing.T) {
			began := time.Now()
			interopFromWhatsApp(t, js, c)
			interopToWhatsApp(t, js, c)
			t.Logf("%s flows took %s", c.name, time.Since(began))
		})
	}

	interopBotNotice(t, js, dm.room, bot)
	for _, c := range []*interopChat{dm, grp} {
		checkInteropRoom(t, alice.mx, js, c.room, alice.mx.UserID, bot, cfg.PuppetUserID("4915559302"), cfg.PuppetUserID("4915559303"))
	}
	interopExcludeInsecure(t, js, dm)
	t.Logf("whole test %s", time.Since(start))
}

// interopBotNotice: the bot's own messages in a portal, here its answer to an event WhatsApp
// has nothing for, decrypt; the shield on them must be one of botShields.
func interopBotNotice(t *testing.T, js *jsClient, room id.RoomID, bot id.UserID) {
	odd := js.send(t, room, "com.example.unbridged", map[string]any{"body": "nothing for WhatsApp"})
	notice := js.waitEvent(t, room, bot, "the bot's notice", func(e *jsEvent) bool {
		_, target := e.relation()
		return target == odd
	})
	shield := "none"
	if notice.Shield != nil && notice.Shield.Colour != "none" {
		shield = notice.Shield.Colour + "/" + notice.Shield.Reason
	}
	t.Logf("the bot's notice %q shows shield %s", notice.body(), shield)
	if _, ok := botShields[shield]; !ok {
		t.Errorf("the js client shows %q on the bot's message, not one of %v", shield, botShields)
	}
}

// interopExcludeInsecure: with Element's "exclude insecure devices" (Security & Privacy) a
// message shows only when sent from a device its sender cross-signed; a puppet has no device
// at all. What the js client shows then must be one of excludedOutcomes.
func interopExcludeInsecure(t *testing.T, js *jsClient, c *interopChat) {
	js.do(t, "isolation", map[string]any{"mode": "only_signed"})
	before := js.seen(c.room)
	text := c.name + ": insecure devices excluded"
	if _, err := c.from.SendText(context.Background(), c.chat, text); err != nil {
		t.Fatal(err)
	}
	got := js.waitShown(t, c.room, c.ghost, "the message after excluding insecure devices", func(e *jsEvent) bool {
		_, old := before[e.EventID]
		return !old && (e.UTD || e.body() == text)
	})
	outcome := "decrypted"
	if got.UTD {
		outcome = "utd/" + got.UTDReason
	} else if got.Shield != nil {
		outcome += "/" + got.Shield.Colour + "/" + got.Shield.Reason
	}
	t.Logf("with insecure devices excluded, a puppet's message shows as %s", outcome)
	if _, ok := excludedOutcomes[outcome]; !ok {
		t.Errorf("with insecure devices excluded, a puppet's message shows as %q, not one of %v", outcome, excludedOutcomes)
	}
}

// interopFromWhatsApp: what the contact does on WhatsApp reaches the js client decrypted.
func interopFromWhatsApp(t *testing.T, js *jsClient, c *interopChat) {
	ctx := context.Background()
	say := func(s string) string { return c.name + ": " + s }
	quoteOf := func(r interopSent, text string) *events.Message {
		return &events.Message{Info: types.MessageInfo{ID: r.id, MessageSource: types.MessageSource{Sender: c.from.JID()}},
			Message: &waE2E.Message{Conversation: &text}}
	}

	first := interopSendWA(t, func() (types.MessageID, error) {
		r, err := c.from.SendText(ctx, c.chat, say("from whatsapp"))
		return r.ID, err
	})
	c.first = first.id
	firstEvt := js.waitEvent(t, c.room, c.ghost, "text", func(e *jsEvent) bool { return e.body() == say("from whatsapp") })

	reply := interopSendWA(t, func() (types.MessageID, error) {
		r, err := c.from.SendReply(ctx, c.chat, quoteOf(first, say("from whatsapp")), say("a reply"))
		return r.ID, err
	})
	replyEvt := js.waitEvent(t, c.room, c.ghost, "reply", func(e *jsEvent) bool {
		rel, target := e.relation()
		return strings.Contains(e.body(), say("a reply")) && rel == "m.in_reply_to" && target == firstEvt.EventID
	})
	_ = reply

	interopSendWA(t, func() (types.MessageID, error) {
		r, err := c.from.SendEdit(ctx, c.chat, first.id, say("from whatsapp, edited"))
		return r.ID, err
	})
	js.waitEvent(t, c.room, c.ghost, "edit", func(e *jsEvent) bool {
		rel, target := e.relation()
		nc, _ := e.Content["m.new_content"].(map[string]any)
		return rel == "m.replace" && target == firstEvt.EventID && nc["body"] == say("from whatsapp, edited")
	})

	interopSendWA(t, func() (types.MessageID, error) {
		r, err := c.from.SendReaction(ctx, c.chat, c.from.JID(), first.id, "👍")
		return r.ID, err
	})
	js.waitEvent(t, c.room, c.ghost, "reaction", func(e *jsEvent) bool {
		rel, target := e.relation()
		relates, _ := e.Content["m.relates_to"].(map[string]any)
		key, _ := relates["key"].(string)
		// The bridge sends emoji in their fully qualified form (U+FE0F), as Element does.
		return e.Type == "m.reaction" && rel == "m.annotation" && target == firstEvt.EventID && strings.TrimSuffix(key, "\ufe0f") == "👍"
	})

	interopSendWA(t, func() (types.MessageID, error) {
		r, err := c.from.SendRevoke(ctx, c.chat, c.from.JID(), reply.id)
		return r.ID, err
	})
	js.waitEvent(t, c.room, c.ghost, "redaction", func(e *jsEvent) bool {
		return e.Type == "m.room.redaction" && e.Redacts == replyEvt.EventID
	})

	img := interopImage(c.name + " from whatsapp")
	interopSendWA(t, func() (types.MessageID, error) {
		r, err := c.from.SendImage(ctx, c.chat, img, "image/png", say("a picture"))
		return r.ID, err
	})
	imgEvt := js.waitEvent(t, c.room, c.ghost, "image", func(e *jsEvent) bool {
		return e.Type == "m.room.message" && e.Content["msgtype"] == "m.image"
	})
	switch m := imgEvt.Media; {
	case m == nil:
		t.Errorf("the js client did not fetch the image: %v", imgEvt.Content)
	case m.Error != "":
		t.Errorf("the js client could not fetch the image: %s (%v)", m.Error, imgEvt.Content)
	case m.SHA256 != interopSHA256(img):
		t.Errorf("the js client's image has SHA-256 %s (%d bytes), the phone sent %s (%d bytes)", m.SHA256, m.Size, interopSHA256(img), len(img))
	case !m.EncryptedFile:
		t.Errorf("the image reached the encrypted room as a plain `url`, not an encrypted `file`: %v", imgEvt.Content)
	}
}

// interopToWhatsApp: what the js client sends (encrypted by matrix-js-sdk) reaches every
// phone in the chat, exactly.
func interopToWhatsApp(t *testing.T, js *jsClient, c *interopChat) {
	ctx := context.Background()
	// What the phones get from the Matrix user (the contacts' own messages echo too).
	fromUser := func(p *wasim.Phone, what string, match func(m *events.Message) bool) *events.Message {
		t.Helper()
		return waitWA(t, p, what, func(m *events.Message) bool { return m.Info.Sender.User == c.user.User && match(m) })
	}
	say := func(s string) string { return c.name + ": " + s }
	// The contact's first message, the target of the reply and the reaction.
	target := js.waitEvent(t, c.room, c.ghost, "the contact's text", func(e *jsEvent) bool { return e.body() == say("from whatsapp") })

	text := js.send(t, c.room, "m.room.message", map[string]any{"msgtype": "m.text", "body": say("from element")})
	var textWA *events.Message
	for _, p := range c.all {
		textWA = fromUser(p, "text", func(m *events.Message) bool {
			return m.Message.GetConversation()+m.Message.GetExtendedTextMessage().GetText() == say("from element")
		})
	}

	js.send(t, c.room, "m.room.message", map[string]any{"msgtype": "m.text", "body": say("element replies"),
		"m.relates_to": map[string]any{"m.in_reply_to": map[string]any{"event_id": target.EventID}}})
	for _, p := range c.all {
		got := fromUser(p, "reply", func(m *events.Message) bool {
			return m.Message.GetExtendedTextMessage().GetText() == say("element replies")
		})
		if q := got.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID(); q == "" {
			t.Errorf("%s: the reply reached %s without its quote", c.name, p.JID())
		}
	}

	js.send(t, c.room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "* " + say("from element, edited"),
		"m.new_content": map[string]any{"msgtype": "m.text", "body": say("from element, edited")},
		"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": text}})
	for _, p := range c.all {
		got := fromUser(p, "edit", func(m *events.Message) bool { return m.IsEdit })
		pm := got.Message.GetProtocolMessage()
		edited := pm.GetEditedMessage().GetConversation() + pm.GetEditedMessage().GetExtendedTextMessage().GetText()
		if edited != say("from element, edited") || pm.GetKey().GetID() != textWA.Info.ID {
			t.Errorf("%s: %s got an edit of %s to %q, want %s to %q", c.name, p.JID(), pm.GetKey().GetID(), edited, textWA.Info.ID, say("from element, edited"))
		}
	}

	js.send(t, c.room, "m.reaction", map[string]any{"m.relates_to": map[string]any{
		"rel_type": "m.annotation", "event_id": target.EventID, "key": "🎉"}})
	for _, p := range c.all {
		got := fromUser(p, "reaction", func(m *events.Message) bool { return m.Message.GetReactionMessage() != nil })
		if r := got.Message.GetReactionMessage(); strings.TrimSuffix(r.GetText(), "\ufe0f") != "🎉" || r.GetKey().GetID() != c.first {
			t.Errorf("%s: %s got the reaction %q to %s, want 🎉 to %s", c.name, p.JID(), r.GetText(), r.GetKey().GetID(), c.first)
		}
	}

	js.do(t, "redact", map[string]any{"room_id": c.room, "event_id": text})
	for _, p := range c.all {
		got := fromUser(p, "revoke", func(m *events.Message) bool {
			// REVOKE is the enum's zero: a message without a protocolMessage (a group's
			// sender-key distribution) has that type too.
			pm := m.Message.GetProtocolMessage()
			return pm != nil && pm.GetType() == waE2E.ProtocolMessage_REVOKE
		})
		if id := got.Message.GetProtocolMessage().GetKey().GetID(); id != textWA.Info.ID {
			t.Errorf("%s: %s got a revoke of %q, want %s: %v", c.name, p.JID(), id, textWA.Info.ID, got.RawMessage)
		}
	}

	img := interopImage(c.name + " from element")
	path := filepath.Join(t.TempDir(), "picture.png")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	js.do(t, "send_image", map[string]any{"room_id": c.room, "path": path, "mimetype": "image/png", "name": "picture.png"})
	for _, p := range c.all {
		got := fromUser(p, "image", func(m *events.Message) bool { return m.Message.GetImageMessage() != nil })
		data, err := p.Client.Download(ctx, got.Message.GetImageMessage())
		if err != nil || !bytes.Equal(data, img) {
			t.Errorf("%s: %s downloaded %d bytes (%v), want the %d the js client sent", c.name, p.JID(), len(data), err, len(img))
		}
	}

	// A last message, relayed after everything above: once a phone has it, it has all the
	// Matrix user sent, and nothing more.
	js.send(t, c.room, "m.room.message", map[string]any{"msgtype": "m.text", "body": say("last from element")})
	for _, p := range c.all {
		fromUser(p, "last text", func(m *events.Message) bool { return m.Message.GetConversation() == say("last from element") })
		want := []string{"text", "reply", "edit", "reaction", "revoke", "image", "text"}
		if got := interopKinds(p, c.chat, c.user); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %s got %v from the Matrix user, want exactly %v", c.name, p.JID(), got, want)
		}
	}
}

// interopKinds lists, in order, the kinds of the messages a phone got from user in chat
// (a group's sender-key distribution, which carries no content, aside).
func interopKinds(p *wasim.Phone, chat, user types.JID) []string {
	var kinds []string
	for _, evt := range p.Events.All() {
		m, ok := evt.(*events.Message)
		if !ok || m.Info.Chat.ToNonAD() != chat.ToNonAD() || m.Info.Sender.User != user.User {
			continue
		}
		pm := m.Message.GetProtocolMessage()
		switch {
		case m.IsEdit:
			kinds = append(kinds, "edit")
		case pm != nil && pm.GetType() == waE2E.ProtocolMessage_REVOKE:
			kinds = append(kinds, "revoke")
		case m.Message.GetReactionMessage() != nil:
			kinds = append(kinds, "reaction")
		case m.Message.GetImageMessage() != nil:
			kinds = append(kinds, "image")
		case m.Message.GetExtendedTextMessage().GetContextInfo().GetStanzaID() != "":
			kinds = append(kinds, "reply")
		case m.Message.GetConversation() != "" || m.Message.GetExtendedTextMessage().GetText() != "":
			kinds = append(kinds, "text")
		case m.Message.GetSenderKeyDistributionMessage() != nil && pm == nil:
		default:
			kinds = append(kinds, fmt.Sprintf("other(%v)", m.Message))
		}
	}
	return kinds
}

// checkInteropRoom reads the room as the homeserver has it: every event the bridge sent
// (bot and puppets) is encrypted and the js client decrypted it; everything the js user
// sent went out encrypted (redactions and reactions aside: matrix-js-sdk never encrypts
// them). It logs the shields
// the js client shows on the puppets' messages and fails on one not in puppetShields.
func checkInteropRoom(t *testing.T, cli *mautrix.Client, js *jsClient, room id.RoomID, user, bot id.UserID, puppets ...id.UserID) {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	seen := js.seen(room)
	bridged := map[id.UserID]bool{bot: true}
	for _, p := range puppets {
		bridged[p] = true
	}
	shields := map[string]int{}
	var owners []string
	decrypted := 0
	for _, evt := range resp.Chunk {
		if evt.StateKey != nil || evt.Type == event.EventRedaction {
			continue
		}
		switch {
		case bridged[evt.Sender] && evt.Type != event.EventEncrypted:
			t.Errorf("%s: the bridge sent %s %s in plaintext as %s", room, evt.Type.Type, evt.ID, evt.Sender)
		case evt.Sender == user && evt.Type == event.EventReaction:
			// matrix-js-sdk never encrypts reactions (client.ts, shouldEncryptEventForRoom).
		case evt.Sender == user && evt.Type != event.EventEncrypted:
			t.Errorf("%s: the js client sent %s %s in plaintext", room, evt.Type.Type, evt.ID)
		case bridged[evt.Sender]:
			js, ok := seen[evt.ID]
			switch {
			case !ok:
				t.Errorf("%s: the js client never showed %s's event %s", room, evt.Sender, evt.ID)
			case js.Redacted && js.Shield == nil:
				// Redacted before this device saw it: nothing is left to decrypt.
			case js.UTD:
				t.Errorf("%s: the js client could not decrypt %s's event %s: %s", room, evt.Sender, evt.ID, js.UTDReason)
			case js.Shield == nil:
				t.Errorf("%s: the js client gave no encryption info for %s's event %s", room, evt.Sender, evt.ID)
			default:
				decrypted++
				key := js.Shield.Colour + "/" + js.Shield.Reason
				if js.Shield.Reason == "" {
					key = js.Shield.Colour
				}
				if evt.Sender != bot {
					shields[key]++
				}
				if d := js.SenderDevice; d != nil {
					owners = append(owners, fmt.Sprintf("%s's device %s (cross-signed by its owner: %v, verified: %v)", d.UserID, d.DeviceID, d.CrossSigned, d.Verified))
				}
			}
		}
	}
	if decrypted == 0 {
		t.Errorf("%s: no bridged event to check", room)
	}
	sort.Strings(owners)
	owners = interopCompact(owners)
	t.Logf("%s: the js client decrypted all %d bridged events; puppets' messages show shields %v; sessions owned by %v", room, decrypted, shields, owners)
	for key := range shields {
		if _, ok := puppetShields[key]; !ok {
			t.Errorf("%s: the js client shows %q on puppets' messages, not one of the expected %v", room, key, puppetShields)
		}
	}
}

func interopCompact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// interopSent is a message a phone sent.
type interopSent struct{ id types.MessageID }

func interopSendWA(t *testing.T, send func() (types.MessageID, error)) interopSent {
	t.Helper()
	msgID, err := send()
	if err != nil {
		t.Fatal(err)
	}
	return interopSent{id: msgID}
}

// testImage is a small PNG-looking payload unique to its label.
func interopImage(label string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte(label+" "), 300)...)
}

func interopSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
