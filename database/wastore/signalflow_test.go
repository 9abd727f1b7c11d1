package wastore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

var signalSerializer = store.SignalProtobufSerializer

// phone is one party of a conversation: a device in its own container, restarted at will.
type phone struct {
	b   backend
	jid types.JID
	c   *Container
	dev *store.Device
}

func newPhone(t *testing.T, b backend, jid string) *phone {
	t.Helper()
	p := &phone{b: b, jid: mustJID(jid), c: b.open(t)}
	p.dev = p.c.NewDevice()
	p.dev.ID = &p.jid
	must(t, p.dev.Save(context.Background()))
	return p
}

// restart drops all in-memory state and loads the device from the database again.
func (p *phone) restart(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	must(t, p.c.Close())
	c := p.b.open(t)
	dev, err := c.GetDevice(ctx, p.jid)
	must(t, err)
	if dev == nil {
		t.Fatalf("device %s vanished on restart", p.jid)
	}
	p.c, p.dev = c, dev
}

func (p *phone) addr() *protocol.SignalAddress { return p.jid.SignalAddress() }

// bundle publishes one uploaded one-time prekey with the signed prekey, as the server would.
func (p *phone) bundle(t *testing.T) (*prekey.Bundle, uint32) {
	t.Helper()
	ctx := context.Background()
	keys, err := p.dev.PreKeys.GetOrGenPreKeys(ctx, 3)
	must(t, err)
	must(t, p.dev.PreKeys.MarkPreKeysAsUploaded(ctx, keys[len(keys)-1].KeyID))
	otk := keys[1]
	spk := p.dev.SignedPreKey
	return prekey.NewBundle(p.dev.RegistrationID, uint32(p.jid.Device), optional.NewOptionalUint32(otk.KeyID), spk.KeyID,
		ecc.NewDjbECPublicKey(*otk.Pub), ecc.NewDjbECPublicKey(*spk.Pub), *spk.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*p.dev.IdentityKey.Pub))), otk.KeyID
}

func (p *phone) cipherFor(peer *phone) *session.Cipher {
	return session.NewCipher(session.NewBuilderFromSignal(p.dev, peer.addr(), signalSerializer), peer.addr())
}

func (p *phone) encrypt(t *testing.T, ctx context.Context, peer *phone, text string) protocol.CiphertextMessage {
	t.Helper()
	msg, err := p.cipherFor(peer).Encrypt(ctx, []byte(text))
	must(t, err)
	return msg
}

// decrypt mirrors whatsmeow's bufferedDecrypt: decryption and buffering in one transaction.
// failAfter makes the transaction fail after a successful decryption.
func (p *phone) decrypt(ctx context.Context, from *phone, msg protocol.CiphertextMessage, failAfter bool) (string, error) {
	var plaintext []byte
	err := p.dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		var err error
		cipher := p.cipherFor(from)
		switch msg.Type() {
		case protocol.PREKEY_TYPE:
			var parsed *protocol.PreKeySignalMessage
			if parsed, err = protocol.NewPreKeySignalMessageFromBytes(msg.Serialize(), signalSerializer.PreKeySignalMessage, signalSerializer.SignalMessage); err == nil {
				plaintext, err = cipher.DecryptMessage(ctx, parsed)
			}
		default:
			var parsed *protocol.SignalMessage
			if parsed, err = protocol.NewSignalMessageFromBytes(msg.Serialize(), signalSerializer.SignalMessage); err == nil {
				plaintext, err = cipher.Decrypt(ctx, parsed)
			}
		}
		if err != nil {
			return err
		}
		if err := p.dev.EventBuffer.PutBufferedEvent(ctx, hashOf(msg.Serialize()), plaintext, nowForTest()); err != nil {
			return err
		}
		if failAfter {
			return errTest
		}
		return nil
	})
	return string(plaintext), err
}

func TestSignalSessionFlowThroughStores(t *testing.T) {
	eachBackend(t, testSignalSessionFlowThroughStores)
}

func testSignalSessionFlowThroughStores(t *testing.T, b backend) {
	ctx := context.Background()
	alice := newPhone(t, b, "4915100000001:0@s.whatsapp.net")
	bob := newPhone(t, b, "4915100000002:0@s.whatsapp.net")

	// Alice fetches Bob's bundle and starts a session (X3DH), as encryptMessageForDevice does.
	bundle, otkID := bob.bundle(t)
	must(t, session.NewBuilderFromSignal(alice.dev, bob.addr(), signalSerializer).ProcessBundle(ctx, bundle))
	first := alice.encrypt(t, ctx, bob, "hello bob")
	if first.Type() != protocol.PREKEY_TYPE {
		t.Fatalf("first message type %d, want a prekey message", first.Type())
	}

	// A decryption whose transaction fails leaves no trace: the same ciphertext decrypts again.
	if _, err := bob.decrypt(ctx, alice, first, true); !errors.Is(err, errTest) {
		t.Fatalf("failing decryption transaction: %v", err)
	}
	if key, _ := bob.dev.PreKeys.GetPreKey(ctx, otkID); key == nil {
		t.Fatal("consumed one-time prekey was not restored by the rollback")
	}
	got, err := bob.decrypt(ctx, alice, first, false)
	if err != nil || got != "hello bob" {
		t.Fatalf("bob decrypts %q, %v", got, err)
	}
	if key, _ := bob.dev.PreKeys.GetPreKey(ctx, otkID); key != nil {
		t.Error("one-time prekey still stored after the prekey message consumed it")
	}
	if ok, _ := bob.dev.Identities.IsTrustedIdentity(ctx, alice.addr().String(), *alice.dev.IdentityKey.Pub); !ok {
		t.Error("bob does not trust alice's identity key")
	}
	if ok, _ := bob.dev.Identities.IsTrustedIdentity(ctx, alice.addr().String(), *bob.dev.IdentityKey.Pub); ok {
		t.Error("bob trusts a foreign key for alice")
	}

	// Ratchet back and forth, restarting both phones in between: every step needs the
	// session state the previous step stored.
	for round := range 6 {
		if round%2 == 0 {
			alice.restart(t)
			bob.restart(t)
		}
		text := fmt.Sprintf("reply %d", round)
		got, err := alice.decrypt(ctx, bob, bob.encrypt(t, ctx, alice, text), false)
		if err != nil || got != text {
			t.Fatalf("round %d: alice decrypts %q, %v", round, got, err)
		}
		text = fmt.Sprintf("answer %d", round)
		got, err = bob.decrypt(ctx, alice, alice.encrypt(t, ctx, bob, text), false)
		if err != nil || got != text {
			t.Fatalf("round %d: bob decrypts %q, %v", round, got, err)
		}
	}

	// whatsmeow's send path: prefetch sessions, encrypt in the cache, flush with PutManySessions.
	addrs := []string{bob.addr().String(), "4915100000009:0"}
	existing, cachedCtx, err := alice.dev.WithCachedSessions(ctx, addrs)
	must(t, err)
	if !existing[addrs[0]] || existing[addrs[1]] {
		t.Fatalf("WithCachedSessions existing = %v", existing)
	}
	burst := make([]protocol.CiphertextMessage, 3)
	for i := range burst {
		burst[i] = alice.encrypt(t, cachedCtx, bob, fmt.Sprintf("burst %d", i))
	}
	must(t, alice.dev.PutCachedSessions(cachedCtx))
	alice.restart(t)
	for i, msg := range burst {
		if got, err := bob.decrypt(ctx, alice, msg, false); err != nil || got != fmt.Sprintf("burst %d", i) {
			t.Fatalf("burst %d: %q, %v", i, got, err)
		}
	}
	// Alice's chain must continue after the burst; had the flush been lost she would reuse
	// a message key Bob has already consumed.
	got, err = bob.decrypt(ctx, alice, alice.encrypt(t, ctx, bob, "after burst"), false)
	if err != nil || got != "after burst" {
		t.Fatalf("bob after alice's cached send: %q, %v (session flushed by PutManySessions was not stored)", got, err)
	}

	// Replaying a handled message must fail: the stored ratchet has moved on.
	if _, err := bob.decrypt(ctx, alice, burst[0], false); err == nil {
		t.Error("replayed message decrypted again")
	}
}

func TestSenderKeyFlowThroughStores(t *testing.T) { eachBackend(t, testSenderKeyFlowThroughStores) }

func testSenderKeyFlowThroughStores(t *testing.T, b backend) {
	ctx := context.Background()
	alice := newPhone(t, b, "4915100000011:0@s.whatsapp.net")
	bob := newPhone(t, b, "4915100000012:0@s.whatsapp.net")
	const group = "120363000000000001@g.us"
	name := protocol.NewSenderKeyName(group, alice.addr())

	skdm, err := groups.NewGroupSessionBuilder(alice.dev, signalSerializer).Create(ctx, name)
	must(t, err)
	received, err := protocol.NewSenderKeyDistributionMessageFromBytes(skdm.Serialize(), signalSerializer.SenderKeyDistributionMessage)
	must(t, err)
	must(t, groups.NewGroupSessionBuilder(bob.dev, signalSerializer).Process(ctx, name, received))

	for i := range 4 {
		alice.restart(t)
		bob.restart(t)
		text := fmt.Sprintf("to the group %d", i)
		cipher := groups.NewGroupCipher(groups.NewGroupSessionBuilder(alice.dev, signalSerializer), name, alice.dev)
		encrypted, err := cipher.Encrypt(ctx, []byte(text))
		must(t, err)
		msg, err := protocol.NewSenderKeyMessageFromBytes(encrypted.SignedSerialize(), signalSerializer.SenderKeyMessage)
		must(t, err)
		bobCipher := groups.NewGroupCipher(groups.NewGroupSessionBuilder(bob.dev, signalSerializer), name, bob.dev)
		got, err := bobCipher.Decrypt(ctx, msg)
		if err != nil || string(got) != text {
			t.Fatalf("message %d: bob decrypts %q, %v (sender key state not persisted?)", i, got, err)
		}
	}
}
