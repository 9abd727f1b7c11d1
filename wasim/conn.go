package wasim

import (
	"context"
	"crypto/cipher"
	"errors"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/socket"
)

const outboxSize = 8192

// conn is one client websocket after (or during) the Noise handshake.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	log    zerolog.Logger

	frames chan []byte
	outbox chan []byte

	readKey, writeKey cipher.AEAD
	readCounter       uint32
	writeCounter      uint32

	// Set once the device has logged in (under Server.mu).
	dev      devRef
	loggedIn bool
	// Set for registration (pairing) connections.
	reg *registration

	closeOnce sync.Once
	done      chan struct{}
}

func (s *Server) handleWebsocket(w http.ResponseWriter, r *http.Request) {
	// whatsmeow sends Origin: https://web.whatsapp.com, which is not our host.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Warn().Err(err).Msg("Websocket upgrade failed")
		return
	}
	ws.SetReadLimit(socket.FrameMaxSize + 16)
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s: s, ws: ws, ctx: ctx, cancel: cancel,
		log:    s.log.With().Str("remote", r.RemoteAddr).Logger(),
		frames: make(chan []byte, 64),
		outbox: make(chan []byte, outboxSize),
		done:   make(chan struct{}),
	}
	go c.readPump()
	c.serve()
}

// readPump splits the websocket stream into frames: the first message starts with the 4-byte WA header,
// then every frame is a 3-byte big-endian length and a payload, split or coalesced arbitrarily.
func (c *conn) readPump() {
	defer close(c.frames)
	var buf []byte
	first := true
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageBinary {
			continue
		}
		buf = append(buf, data...)
		if first {
			if len(buf) < len(socket.WAConnHeader) {
				continue
			}
			if buf[0] != 'W' || buf[1] != 'A' {
				c.log.Warn().Msg("Client did not send the WA connection header")
				return
			}
			buf = buf[len(socket.WAConnHeader):]
			first = false
		}
		for len(buf) >= socket.FrameLengthSize {
			length := int(buf[0])<<16 | int(buf[1])<<8 | int(buf[2])
			if len(buf) < socket.FrameLengthSize+length {
				break
			}
			frame := make([]byte, length)
			copy(frame, buf[socket.FrameLengthSize:socket.FrameLengthSize+length])
			buf = buf[socket.FrameLengthSize+length:]
			select {
			case c.frames <- frame:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

func (c *conn) recvFrame() ([]byte, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return nil, errors.New("connection closed")
		}
		return f, nil
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

func (c *conn) writeFrame(data []byte) error {
	frame := make([]byte, socket.FrameLengthSize+len(data))
	frame[0], frame[1], frame[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(frame[socket.FrameLengthSize:], data)
	return c.ws.Write(c.ctx, websocket.MessageBinary, frame)
}

func (c *conn) serve() {
	defer c.close("connection ended")
	hs, err := c.s.keys.noise.serverHandshake(c.recvFrame, c.writeFrame)
	if err != nil {
		c.log.Debug().Err(err).Msg("Noise handshake failed")
		return
	}
	c.readKey, c.writeKey = hs.readKey, hs.writeKey
	go c.writePump()
	if hs.payload.Username != nil {
		if !c.s.login(c, hs) {
			// The rejection is on its way; sendAndClose closes the socket after the grace period.
			<-c.done
			return
		}
	} else if !c.s.startRegistration(c, hs) {
		return
	}
	for {
		frame, err := c.recvFrame()
		if err != nil {
			return
		}
		plain, err := c.readKey.Open(nil, noiseIV(c.readCounter), frame, nil)
		c.readCounter++
		if err != nil {
			c.log.Warn().Err(err).Msg("Failed to decrypt client frame")
			return
		}
		unpacked, err := waBinary.Unpack(plain)
		if err != nil {
			c.log.Warn().Err(err).Msg("Failed to unpack client frame")
			continue
		}
		node, err := waBinary.Unmarshal(unpacked)
		if err != nil {
			c.log.Warn().Err(err).Msg("Failed to decode client node")
			continue
		}
		c.s.touch()
		c.s.handleNode(c, node)
	}
}

func (c *conn) writePump() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case plain := <-c.outbox:
			c.s.touch()
			ct := c.writeKey.Seal(nil, noiseIV(c.writeCounter), plain, nil)
			c.writeCounter++
			if err := c.writeFrame(ct); err != nil {
				c.close("write failed")
				return
			}
		}
	}
}

// send queues a node for this connection without blocking the caller, who usually holds Server.mu.
func (c *conn) send(node waBinary.Node) {
	data, err := waBinary.Marshal(node)
	if err != nil {
		c.log.Error().Err(err).Str("tag", node.Tag).Msg("Failed to encode node")
		return
	}
	c.sendRaw(data)
}

func (c *conn) sendRaw(data []byte) {
	select {
	case <-c.ctx.Done():
	case c.outbox <- data:
	default:
		c.log.Warn().Msg("Client outbox full, dropping connection")
		go c.close("outbox full")
	}
}

// sendAndClose writes a final node (a stream error or failure) and then closes the socket, giving the
// writer a moment to flush so the client sees why it was disconnected.
func (c *conn) sendAndClose(node waBinary.Node, reason string) {
	c.send(node)
	go func() {
		c.flush()
		c.close(reason)
	}()
}

// flush waits until the outbox is drained, then gives the client a grace period to read and handle
// the last stanza. whatsmeow handles nodes on a separate goroutine that stops when the socket dies, so
// closing at once can make it miss the very <failure> or <stream:error> it was meant to see.
func (c *conn) flush() {
	for i := 0; i < 200 && len(c.outbox) > 0; i++ {
		select {
		case <-c.ctx.Done():
			return
		case <-timeAfter(5):
		}
	}
	select {
	case <-c.ctx.Done():
	case <-timeAfter(closeGraceMillis):
	}
}

// closeGraceMillis is how long a socket stays open after a final stanza unless the client closes first.
const closeGraceMillis = 500

func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.log.Debug().Str("reason", reason).Msg("Closing client connection")
		c.s.connClosed(c)
		c.cancel()
		// An abrupt close is what a dying server or network looks like to the client.
		_ = c.ws.CloseNow()
		close(c.done)
	})
}

// connClosed forgets a connection. A newer connection for the same device is left alone.
func (s *Server) connClosed(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.loggedIn && s.conns[c.dev] == c {
		delete(s.conns, c.dev)
		s.deviceWentOfflineLocked(c.dev)
	}
	for ref, pc := range s.pending {
		if pc == c {
			delete(s.pending, ref)
		}
	}
}

func errNode(code int, text string) waBinary.Node {
	return waBinary.Node{Tag: "error", Attrs: waBinary.Attrs{"code": code, "text": text}}
}
