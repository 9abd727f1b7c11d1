//go:build goolm

package bridge_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/olm"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// olmPayload is the plaintext of an Olm to-device event, which names its sender,
// recipient and keys once more inside the encryption.
type olmPayload struct {
	Sender        id.UserID             `json:"sender"`
	Recipient     id.UserID             `json:"recipient"`
	RecipientKeys map[string]id.Ed25519 `json:"recipient_keys"`
	Keys          map[string]id.Ed25519 `json:"keys"`
	Type          string                `json:"type"`
	Content       any                   `json:"content"`
}

// olmEvent is an Olm to-device event as the test sends it: the payload is encrypted by the
// client's own device, over a new Olm session with one of the target device's one-time
// keys; claimedKey is the sender_key it names (the device's own when empty).
type olmEvent struct {
	payload    olmPayload
	claimedKey id.SenderKey
}

// sendOlm sends an Olm-encrypted to-device event to one device.
func (c *cryptoClient) sendOlm(t *testing.T, to id.UserID, device *id.Device, evt olmEvent) {
	t.Helper()
	ctx := context.Background()
	claimed, err := c.cli.ClaimKeys(ctx, &mautrix.ReqClaimKeys{
		OneTimeKeys: mautrix.OneTimeKeysRequest{to: {device.DeviceID: id.KeyAlgorithmSignedCurve25519}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var otk id.Curve25519
	for _, k := range claimed.OneTimeKeys[to][device.DeviceID] {
		otk = k.Key
	}
	if otk == "" {
		t.Fatalf("no one-time key of %s/%s to claim", to, device.DeviceID)
	}
	session, err := c.mach.GetAccount().Internal.NewOutboundSession(device.IdentityKey, otk)
	if err != nil {
		t.Fatal(err)
	}
	plaintext, err := json.Marshal(evt.payload)
	if err != nil {
		t.Fatal(err)
	}
	msgType, ciphertext, err := session.Encrypt(plaintext)
	if err != nil {
		t.Fatal(err)
	}
	senderKey := evt.claimedKey
	if senderKey == "" {
		senderKey = c.mach.OwnIdentity().IdentityKey
	}
	content := &event.Content{Parsed: &event.EncryptedEventContent{
		Algorithm: id.AlgorithmOlmV1,
		SenderKey: senderKey,
		OlmCiphertext: event.OlmCiphertexts{
			device.IdentityKey: {Type: msgType, Body: string(ciphertext)},
		},
	}}
	_, err = c.cli.SendToDevice(ctx, event.ToDeviceEncrypted, &mautrix.ReqSendToDevice{
		Messages: map[id.UserID]map[id.DeviceID]*event.Content{to: {device.DeviceID: content}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// roomKeyFor is the content of an m.room_key for a new Megolm session in room.
func roomKeyFor(t *testing.T, room id.RoomID) *event.RoomKeyEventContent {
	t.Helper()
	session, err := olm.NewOutboundGroupSession()
	if err != nil {
		t.Fatal(err)
	}
	return &event.RoomKeyEventContent{Algorithm: id.AlgorithmMegolmV1, RoomID: room, SessionID: session.ID(), SessionKey: session.Key()}
}

// failedCount reads causeway_encrypted_events_failed_total for one reason.
func failedCount(t *testing.T, address, reason string) int {
	t.Helper()
	series := `causeway_encrypted_events_failed_total{reason="` + reason + `"} `
	return metricSum(t, address, func(line string) bool { return strings.HasPrefix(line, series) })
}
