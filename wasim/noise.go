package wasim

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"go.mau.fi/libsignal/ecc"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/keys"
)

// noiseIdentity is the simulator's stand-in for WhatsApp's Noise certificate hierarchy. The client checks
// the chain against whatsmeow.WACertPubKey, so the root public key is what ConfigureClient installs.
type noiseIdentity struct {
	root      *keys.KeyPair
	static    *keys.KeyPair
	certChain []byte
}

func newNoiseIdentity() (*noiseIdentity, error) {
	root := keys.NewKeyPair()
	intermediate := keys.NewKeyPair()
	static := keys.NewKeyPair()
	const intermediateSerial = 1
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(0),
		Key:          intermediate.Pub[:],
	})
	if err != nil {
		return nil, fmt.Errorf("marshal intermediate cert: %w", err)
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(2),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          static.Pub[:],
	})
	if err != nil {
		return nil, fmt.Errorf("marshal leaf cert: %w", err)
	}
	interSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*root.Priv), interDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*intermediate.Priv), leafDetails)
	chain, err := proto.Marshal(&waCert.CertChain{
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: interSig[:]},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal cert chain: %w", err)
	}
	return &noiseIdentity{root: root, static: static, certChain: chain}, nil
}

// noiseResponder is the server half of Noise_XX_25519_AESGCM_SHA256. whatsmeow's own NoiseHandshake
// hides the chaining key needed for the final split, so the responder keeps its own state.
type noiseResponder struct {
	hash    []byte
	salt    []byte
	key     cipher.AEAD
	counter uint32
}

func newNoiseResponder() (*noiseResponder, error) {
	h := []byte(socket.NoiseStartPattern)
	key, err := gcmutil.Prepare(h)
	if err != nil {
		return nil, fmt.Errorf("prepare initial noise key: %w", err)
	}
	nr := &noiseResponder{hash: h, salt: h, key: key}
	nr.mixHash(socket.WAConnHeader)
	return nr, nil
}

func (nr *noiseResponder) mixHash(data []byte) {
	sum := sha256.Sum256(append(append([]byte{}, nr.hash...), data...))
	nr.hash = sum[:]
}

func noiseIV(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}

func (nr *noiseResponder) encrypt(plaintext []byte) []byte {
	ct := nr.key.Seal(nil, noiseIV(nr.counter), plaintext, nr.hash)
	nr.counter++
	nr.mixHash(ct)
	return ct
}

func (nr *noiseResponder) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := nr.key.Open(nil, noiseIV(nr.counter), ciphertext, nr.hash)
	nr.counter++
	if err != nil {
		return nil, fmt.Errorf("open handshake ciphertext: %w", err)
	}
	nr.mixHash(ciphertext)
	return pt, nil
}

func hkdfPair(salt, ikm []byte) ([]byte, []byte, error) {
	r := hkdf.New(sha256.New, ikm, salt, nil)
	a, b := make([]byte, 32), make([]byte, 32)
	if _, err := io.ReadFull(r, a); err != nil {
		return nil, nil, fmt.Errorf("hkdf: %w", err)
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, nil, fmt.Errorf("hkdf: %w", err)
	}
	return a, b, nil
}

func (nr *noiseResponder) mixDH(priv, pub []byte) error {
	secret, err := curve25519.X25519(priv, pub)
	if err != nil {
		return fmt.Errorf("x25519: %w", err)
	}
	salt, k, err := hkdfPair(nr.salt, secret)
	if err != nil {
		return err
	}
	nr.salt = salt
	nr.counter = 0
	nr.key, err = gcmutil.Prepare(k)
	if err != nil {
		return fmt.Errorf("prepare mixed key: %w", err)
	}
	return nil
}

// handshakeResult is what the server learns from a completed handshake.
type handshakeResult struct {
	clientStatic []byte
	payload      *waWa6.ClientPayload
	readKey      cipher.AEAD
	writeKey     cipher.AEAD
}

// serverHandshake runs the responder side. recv returns the next complete frame, send writes one.
func (ni *noiseIdentity) serverHandshake(recv func() ([]byte, error), send func([]byte) error) (*handshakeResult, error) {
	nr, err := newNoiseResponder()
	if err != nil {
		return nil, err
	}
	first, err := recv()
	if err != nil {
		return nil, fmt.Errorf("read client hello: %w", err)
	}
	var hello waWa6.HandshakeMessage
	if err = proto.Unmarshal(first, &hello); err != nil {
		return nil, fmt.Errorf("unmarshal client hello: %w", err)
	}
	clientEph := hello.GetClientHello().GetEphemeral()
	if len(clientEph) != 32 {
		return nil, fmt.Errorf("client hello has %d-byte ephemeral key", len(clientEph))
	}
	nr.mixHash(clientEph)
	eph := keys.NewKeyPair()
	nr.mixHash(eph.Pub[:])
	if err = nr.mixDH(eph.Priv[:], clientEph); err != nil {
		return nil, err
	}
	staticCT := nr.encrypt(ni.static.Pub[:])
	if err = nr.mixDH(ni.static.Priv[:], clientEph); err != nil {
		return nil, err
	}
	certCT := nr.encrypt(ni.certChain)
	out, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: eph.Pub[:], Static: staticCT, Payload: certCT,
	}})
	if err != nil {
		return nil, fmt.Errorf("marshal server hello: %w", err)
	}
	if err = send(out); err != nil {
		return nil, fmt.Errorf("send server hello: %w", err)
	}
	finishRaw, err := recv()
	if err != nil {
		return nil, fmt.Errorf("read client finish: %w", err)
	}
	var finish waWa6.HandshakeMessage
	if err = proto.Unmarshal(finishRaw, &finish); err != nil {
		return nil, fmt.Errorf("unmarshal client finish: %w", err)
	}
	clientStatic, err := nr.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil {
		return nil, fmt.Errorf("client static: %w", err)
	}
	if len(clientStatic) != 32 {
		return nil, fmt.Errorf("client static key has %d bytes", len(clientStatic))
	}
	if err = nr.mixDH(eph.Priv[:], clientStatic); err != nil {
		return nil, err
	}
	payloadRaw, err := nr.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("client payload: %w", err)
	}
	var payload waWa6.ClientPayload
	if err = proto.Unmarshal(payloadRaw, &payload); err != nil {
		return nil, fmt.Errorf("unmarshal client payload: %w", err)
	}
	// The initiator writes with the first split key, so the responder reads with it.
	k1, k2, err := hkdfPair(nr.salt, nil)
	if err != nil {
		return nil, err
	}
	readKey, err := gcmutil.Prepare(k1)
	if err != nil {
		return nil, fmt.Errorf("prepare read key: %w", err)
	}
	writeKey, err := gcmutil.Prepare(k2)
	if err != nil {
		return nil, fmt.Errorf("prepare write key: %w", err)
	}
	return &handshakeResult{clientStatic: clientStatic, payload: &payload, readKey: readKey, writeKey: writeKey}, nil
}
