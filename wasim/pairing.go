package wasim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/util/random"
	"golang.org/x/crypto/curve25519"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
)

// registration is the state of a not-yet-paired companion connection.
type registration struct {
	noiseKey []byte
	regID    []byte
	identity []byte
	skey     *signedKey
	platform string
	refs     []string

	// Phone-code pairing.
	codePhone       string
	codeRef         string
	wrappedCompEph  []byte
	primaryEphPriv  []byte
	companionEphPub []byte

	// Set once pair-success is sent and the client's signature is awaited.
	pairIQID string
	pairAcct string
	pairDev  int
	keyIndex uint32
}

const qrRefCount = 6

func (s *Server) startRegistration(c *conn, hs *handshakeResult) bool {
	pd := hs.payload.GetDevicePairingData()
	if pd == nil || len(pd.GetERegid()) != 4 || len(pd.GetEIdent()) != 32 {
		c.log.Warn().Msg("Registration payload without pairing data")
		return false
	}
	var props waCompanionReg.DeviceProps
	_ = proto.Unmarshal(pd.GetDeviceProps(), &props)
	reg := &registration{
		noiseKey: hs.clientStatic,
		regID:    pd.GetERegid(),
		identity: pd.GetEIdent(),
		skey:     &signedKey{ID: pd.GetESkeyID(), Pub: pd.GetESkeyVal(), Signature: pd.GetESkeySig()},
		platform: props.GetOs(),
	}
	refNodes := make([]waBinary.Node, qrRefCount)
	s.mu.Lock()
	for i := range refNodes {
		ref := "wasim@" + base64.RawURLEncoding.EncodeToString(random.Bytes(18))
		reg.refs = append(reg.refs, ref)
		s.pending[ref] = c
		refNodes[i] = waBinary.Node{Tag: "ref", Content: []byte(ref)}
	}
	c.reg = reg
	id := "wasim-pair-" + strconv.FormatUint(s.st.nextID("iq"), 10)
	s.mu.Unlock()
	c.log = c.log.With().Str("pairing", "registration").Logger()
	c.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "set", "id": id, "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: refNodes}}})
	return true
}

// scanQR is what the account's phone does with a QR code shown by a companion.
func (s *Server) scanQR(acct *account, code string) error {
	parts := strings.Split(code, ",")
	if len(parts) < 4 {
		return fmt.Errorf("QR code has %d parts, expected 4", len(parts))
	}
	noise, err1 := base64.StdEncoding.DecodeString(parts[1])
	identity, err2 := base64.StdEncoding.DecodeString(parts[2])
	advSecret, err3 := base64.StdEncoding.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("decode QR code: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.pending[parts[0]]
	if c == nil || c.reg == nil {
		return errors.New("QR code is not (or no longer) shown by a connected companion")
	}
	if !bytes.Equal(c.reg.noiseKey, noise) || !bytes.Equal(c.reg.identity, identity) {
		return errors.New("QR code keys do not match the companion's connection")
	}
	return s.sendPairSuccessLocked(c, acct, advSecret)
}

// sendPairSuccessLocked signs the companion's identity with the account's primary identity key, as the
// phone does, and hands it to the companion. The device is registered once the companion countersigns.
func (s *Server) sendPairSuccessLocked(c *conn, acct *account, advSecret []byte) error {
	if c.reg.pairIQID != "" {
		return errors.New("companion is already pairing")
	}
	devID := acct.NextDevice
	if devID < 1 {
		devID = 1
	}
	acct.NextDevice = devID + 1
	acct.KeyIndex++
	var rawID [4]byte
	_, _ = rand.Read(rawID[:])
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(binary.BigEndian.Uint32(rawID[:])),
		Timestamp: proto.Uint64(uint64(s.now().Unix())),
		KeyIndex:  proto.Uint32(acct.KeyIndex),
	})
	if err != nil {
		return fmt.Errorf("marshal device identity: %w", err)
	}
	msg := append(append([]byte{6, 0}, details...), c.reg.identity...)
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey([32]byte(acct.IdentityPriv)), msg)
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details: details, AccountSignatureKey: acct.IdentityPub, AccountSignature: sig[:],
	})
	if err != nil {
		return fmt.Errorf("marshal signed device identity: %w", err)
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
	if err != nil {
		return fmt.Errorf("marshal device identity container: %w", err)
	}
	c.reg.pairIQID = "wasim-pair-" + strconv.FormatUint(s.st.nextID("iq"), 10)
	c.reg.pairAcct = acct.Phone
	c.reg.pairDev = devID
	c.reg.keyIndex = acct.KeyIndex
	c.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "set", "id": c.reg.pairIQID, "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: container},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": "android"}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": acct.deviceJID(devID, false), "lid": acct.deviceJID(devID, true)}},
		}}}})
	return nil
}

// handleIQResponse handles the client's answers to server-initiated iqs (only pairing uses them).
func (s *Server) handleIQResponse(c *conn, node *waBinary.Node) {
	if c.reg == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.reg.pairIQID == "" || attrStr(node.Attrs["id"]) != c.reg.pairIQID {
		return
	}
	if attrStr(node.Attrs["type"]) == "error" {
		errChild := node.GetChildByTag("error")
		c.log.Warn().Str("error", errChild.XMLString()).Msg("Companion rejected pair-success")
		c.reg.pairIQID = ""
		return
	}
	acct := s.st.Accounts[c.reg.pairAcct]
	if acct == nil {
		return
	}
	dev := &device{
		ID: c.reg.pairDev, NoiseKey: c.reg.noiseKey, RegID: c.reg.regID, Identity: c.reg.identity,
		SignedPreKey: c.reg.skey, Platform: c.reg.platform, KeyIndex: c.reg.keyIndex,
	}
	acct.Devices[strconv.Itoa(dev.ID)] = dev
	for _, ref := range c.reg.refs {
		delete(s.pending, ref)
	}
	delete(s.pending, "code:"+c.reg.codeRef)
	s.log.Info().Str("device", devRef{Phone: acct.Phone, Device: dev.ID}.String()).Msg("Paired companion device")
	s.notifyDevicesChangedLocked(acct, "add", dev.ID)
	// 515 tells the client to reconnect and log in with its new identity.
	c.sendAndClose(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}}, "paired")
}

// handleMDIQ covers phone-code pairing and companion removal.
func (s *Server) handleMDIQ(c *conn, node *waBinary.Node) waBinary.Node {
	if reg, ok := node.GetOptionalChildByTag("link_code_companion_reg"); ok {
		return s.handleLinkCodeIQ(c, node, reg)
	}
	if rm, ok := node.GetOptionalChildByTag("remove-companion-device"); ok && c.reg == nil {
		jid, _ := rm.Attrs["jid"].(types.JID)
		s.mu.Lock()
		defer s.mu.Unlock()
		acct := s.st.Accounts[c.dev.Phone]
		if !c.loggedIn || acct == nil || s.st.accountFor(jid) != acct || acct.device(int(jid.Device)) == nil {
			return iqError(node, 404, "item-not-found")
		}
		if int(jid.Device) == c.dev.Device {
			// A device logging itself out disconnects on its own once it has the result.
			delete(acct.Devices, devKey(c.dev.Device))
			delete(s.conns, c.dev)
			c.loggedIn = false
			s.notifyDevicesChangedLocked(acct, "remove", c.dev.Device)
			return iqResult(node)
		}
		s.removeDeviceLocked(acct, int(jid.Device), false)
		return iqResult(node)
	}
	return iqError(node, 501, "feature-not-implemented")
}

func (s *Server) handleLinkCodeIQ(c *conn, node *waBinary.Node, reg waBinary.Node) waBinary.Node {
	if c.reg == nil {
		return iqError(node, 400, "bad-request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	jid, _ := reg.Attrs["jid"].(types.JID)
	switch attrStr(reg.Attrs["stage"]) {
	case "companion_hello":
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		if len(wrapped) != 80 {
			return iqError(node, 400, "bad-request")
		}
		if s.st.Accounts[jid.User] == nil {
			return iqError(node, 404, "item-not-found")
		}
		c.reg.codePhone = jid.User
		c.reg.wrappedCompEph = wrapped
		c.reg.codeRef = base64.RawURLEncoding.EncodeToString(random.Bytes(12))
		s.pending["code:"+c.reg.codeRef] = c
		return iqResult(node, waBinary.Node{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(c.reg.codeRef)},
		}})
	case "companion_finish":
		acct := s.st.Accounts[c.reg.codePhone]
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
		if acct == nil || c.reg.primaryEphPriv == nil || len(wrapped) < 44 {
			return iqError(node, 400, "bad-request")
		}
		advSecret, err := finishLinkCode(acct, c.reg, wrapped)
		if err != nil {
			c.log.Warn().Err(err).Msg("Phone-code pairing failed")
			return iqError(node, 401, "not-authorized")
		}
		if err = s.sendPairSuccessLocked(c, acct, advSecret); err != nil {
			c.log.Warn().Err(err).Msg("Could not send pair-success")
		}
		return iqResult(node)
	}
	return iqError(node, 400, "bad-request")
}

func linkCodeCipher(code string, salt, iv []byte) (cipher.Stream, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, 2<<16, 32)
	if err != nil {
		return nil, fmt.Errorf("derive link code key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("link code cipher: %w", err)
	}
	return cipher.NewCTR(block, iv), nil
}

// enterLinkCode is the phone typing the companion's 8-character code.
func (s *Server) enterLinkCode(acct *account, code string) error {
	code = strings.ToUpper(strings.ReplaceAll(code, "-", ""))
	s.mu.Lock()
	defer s.mu.Unlock()
	var c *conn
	for key, pc := range s.pending {
		if strings.HasPrefix(key, "code:") && pc.reg != nil && pc.reg.codePhone == acct.Phone && pc.reg.primaryEphPriv == nil {
			c = pc
		}
	}
	if c == nil {
		return errors.New("no companion is waiting for a pairing code for this account")
	}
	w := c.reg.wrappedCompEph
	stream, err := linkCodeCipher(code, w[:32], w[32:48])
	if err != nil {
		return err
	}
	compEph := make([]byte, 32)
	stream.XORKeyStream(compEph, w[48:80])
	primary := keys.NewKeyPair()
	salt, iv := random.Bytes(32), random.Bytes(16)
	stream, err = linkCodeCipher(code, salt, iv)
	if err != nil {
		return err
	}
	encPub := make([]byte, 32)
	stream.XORKeyStream(encPub, primary.Pub[:])
	c.reg.companionEphPub = compEph
	c.reg.primaryEphPriv = primary.Priv[:]
	// Not queued: the companion has no device yet, and the notification is only meaningful on this socket.
	c.send(s.notificationLocked("link_code_companion_reg", types.ServerJID, waBinary.Node{
		Tag: "link_code_companion_reg", Attrs: waBinary.Attrs{"stage": "primary_hello"},
		Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(c.reg.codeRef)},
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: append(append(salt, iv...), encPub...)},
			{Tag: "primary_identity_pub", Content: acct.IdentityPub},
		},
	}))
	return nil
}

// finishLinkCode unwraps the companion's key bundle and derives the ADV secret both sides now share. A
// wrong code shows up here: the companion's ephemeral key was unwrapped with the wrong key, so the DH
// result differs and GCM authentication fails.
func finishLinkCode(acct *account, reg *registration, wrapped []byte) ([]byte, error) {
	ephShared, err := curve25519.X25519(reg.primaryEphPriv, reg.companionEphPub)
	if err != nil {
		return nil, fmt.Errorf("ephemeral DH: %w", err)
	}
	salt, nonce, ct := wrapped[:32], wrapped[32:44], wrapped[44:]
	key := hkdfutil.SHA256(ephShared, salt, []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key bundle cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key bundle GCM: %w", err)
	}
	bundle, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("open key bundle (wrong pairing code?): %w", err)
	}
	if len(bundle) != 96 || !bytes.Equal(bundle[:32], reg.identity) || !bytes.Equal(bundle[32:64], acct.IdentityPub) {
		return nil, errors.New("key bundle does not name this companion and phone")
	}
	identShared, err := curve25519.X25519(acct.IdentityPriv, bundle[:32])
	if err != nil {
		return nil, fmt.Errorf("identity DH: %w", err)
	}
	input := append(append(append([]byte{}, ephShared...), identShared...), bundle[64:]...)
	return hkdfutil.SHA256(input, nil, []byte("adv_secret"), 32), nil
}

// removeDeviceLocked unlinks a device. A connected device is told it was removed, which makes whatsmeow
// delete its store; viaFailure sends the <failure reason=401> form instead of the stream error.
func (s *Server) removeDeviceLocked(acct *account, devID int, viaFailure bool) {
	ref := devRef{Phone: acct.Phone, Device: devID}
	delete(acct.Devices, strconv.Itoa(devID))
	if c := s.conns[ref]; c != nil {
		delete(s.conns, ref)
		c.loggedIn = false
		if viaFailure {
			c.sendAndClose(failureNode(401), "logged out")
		} else {
			c.sendAndClose(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "401"},
				Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}}}, "device removed")
		}
	}
	s.notifyDevicesChangedLocked(acct, "remove", devID)
}
