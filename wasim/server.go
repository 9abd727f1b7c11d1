// Package wasim is a local WhatsApp server that unmodified whatsmeow clients pair with, log in to and
// message through. It only routes: all end-to-end crypto happens in the clients. See README.md.
package wasim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"go.mau.fi/whatsmeow/types"
)

// Options configures a simulator.
type Options struct {
	// Dir keeps the server state (accounts, devices, queues, groups, media, app state) across Restart and
	// across processes, and holds the phones' whatsmeow stores. Empty means a temporary directory that
	// Close removes; state then survives Restart only in memory.
	Dir string
	// Log receives the simulator's own structured log. The zero value discards it.
	Log zerolog.Logger
	// Addr is the loopback address to listen on; default 127.0.0.1:0.
	Addr string
}

// Server is a running (or stopped) simulator. Its state outlives Stop, so Start after Stop resumes it.
type Server struct {
	opts    Options
	log     zerolog.Logger
	dir     string
	tempDir bool
	keys    *processKeys

	mu      sync.Mutex
	st      *state
	conns   map[devRef]*conn
	pending map[string]*conn // pairing connections by QR ref or link-code pairing ref
	faults  map[devRef]*deviceFaults
	phones  []*Phone
	nacks   []Nack
	online  map[devRef]bool
	// broadcastSends maps the message ID of a status update or broadcast-list message to the
	// broadcast address its copies are delivered from (broadcast.go).
	broadcastSends map[string]types.JID
	// mediaOutage makes media downloads fail with 503, as a media host that is down.
	mediaOutage bool
	refusals    refusals
	running     bool
	ln          net.Listener
	httpSrv     *http.Server
	addr        string
	dialMu      sync.RWMutex

	lastActivity atomic.Int64 // unix nanoseconds of the last stanza in either direction
	stopSaving   chan struct{}
}

// saveInterval bounds how much state a crashed demo process can lose.
const saveInterval = 5 * time.Second

func (s *Server) saveLoop(stop <-chan struct{}) {
	ticker := time.NewTicker(saveInterval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			s.mu.Lock()
			err := s.st.save(s.dir)
			s.mu.Unlock()
			if err != nil {
				s.log.Warn().Err(err).Msg("Failed to save simulator state")
			}
		}
	}
}

// processKeys are the Noise certificate chain and the TLS CA. whatsmeow.WACertPubKey is a process-wide
// variable, so every simulator in one process shares one root rather than racing to overwrite it.
type processKeys struct {
	noise *noiseIdentity
	ca    *localCA
}

var (
	keysOnce sync.Once
	keysVal  *processKeys
	keysErr  error
)

func getProcessKeys() (*processKeys, error) {
	keysOnce.Do(func() {
		ni, err := newNoiseIdentity()
		if err != nil {
			keysErr = err
			return
		}
		ca, err := newLocalCA()
		if err != nil {
			keysErr = err
			return
		}
		keysVal = &processKeys{noise: ni, ca: ca}
	})
	return keysVal, keysErr
}

// Start creates a simulator and starts listening on loopback.
func Start(ctx context.Context, opts Options) (*Server, error) {
	keys, err := getProcessKeys()
	if err != nil {
		return nil, fmt.Errorf("generate simulator keys: %w", err)
	}
	s := &Server{
		opts:    opts,
		log:     opts.Log.With().Str("component", "wasim").Logger(),
		keys:    keys,
		conns:   map[devRef]*conn{},
		pending: map[string]*conn{},
		faults:  map[devRef]*deviceFaults{},
	}
	if opts.Dir == "" {
		s.dir, err = os.MkdirTemp("", "wasim-*")
		if err != nil {
			return nil, fmt.Errorf("create simulator directory: %w", err)
		}
		s.tempDir = true
	} else {
		s.dir = opts.Dir
		if err = os.MkdirAll(s.dir, 0o700); err != nil {
			return nil, fmt.Errorf("create simulator directory: %w", err)
		}
	}
	if opts.Dir != "" {
		s.st, err = loadState(s.dir)
		if err != nil {
			return nil, err
		}
	} else {
		s.st = newState()
	}
	if err = s.listen(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen(ctx context.Context) error {
	addr := s.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// Reuse the previous port after a restart so that anything holding the old address keeps working.
	if s.addr != "" {
		addr = s.addr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil && s.addr != "" {
		ln, err = lc.Listen(ctx, "tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("listen for simulator: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/chat", s.handleWebsocket)
	mux.HandleFunc("/mms/", s.handleUpload)
	mux.HandleFunc("/v/", s.handleDownload)
	mux.HandleFunc("/pps/", s.handlePictureDownload)
	mux.HandleFunc("GET /{$}", s.handleWebVersion)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.keys.ca.leaf}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// Clients that vanish mid-handshake are routine here (fault injection, teardown).
		ErrorLog: log.New(debugWriter{s.log}, "", 0),
	}
	s.mu.Lock()
	s.ln = ln
	s.httpSrv = srv
	s.running = true
	stopSaving := make(chan struct{})
	s.stopSaving = stopSaving
	s.mu.Unlock()
	if s.opts.Dir != "" {
		go s.saveLoop(stopSaving)
	}
	s.dialMu.Lock()
	s.addr = ln.Addr().String()
	s.dialMu.Unlock()
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("Simulator HTTPS server stopped")
		}
	}()
	s.log.Info().Str("addr", s.addr).Msg("Simulator listening")
	return nil
}

// Addr is the loopback address the simulator listens on.
func (s *Server) Addr() string {
	s.dialMu.RLock()
	defer s.dialMu.RUnlock()
	return s.addr
}

// CACertPEM is the simulator's TLS CA, for processes that reach it through SSL_CERT_FILE.
func (s *Server) CACertPEM() []byte { return s.keys.ca.certPEM }

// NoiseRootKey is the public key that whatsmeow.WACertPubKey must hold for clients to accept the simulator.
func (s *Server) NoiseRootKey() [32]byte { return *s.keys.noise.root.Pub }

// Stop closes every connection and the listener, as a server crash would. State is kept in memory (and
// written to Options.Dir when set), so Start resumes where Stop left off.
func (s *Server) Stop() error {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	s.running = false
	close(s.stopSaving)
	srv := s.httpSrv
	conns := make([]*conn, 0, len(s.conns)+len(s.pending))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	for _, c := range s.pending {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close("server stopping")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	if s.opts.Dir != "" {
		s.mu.Lock()
		saveErr := s.st.save(s.dir)
		s.mu.Unlock()
		if saveErr != nil {
			return saveErr
		}
	}
	return nil
}

// Start resumes a stopped simulator on the same address when possible.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running {
		return nil
	}
	if s.opts.Dir != "" {
		st, err := loadState(s.dir)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.st = st
		s.mu.Unlock()
	}
	return s.listen(ctx)
}

// Restart stops and starts the server with its state intact; connected clients see the connection drop
// and reconnect on their own.
func (s *Server) Restart(ctx context.Context) error {
	s.settle()
	if err := s.Stop(); err != nil {
		return fmt.Errorf("stop simulator: %w", err)
	}
	return s.Start(ctx)
}

// Close stops the simulator for good, disconnects its phones and removes its temporary directory.
func (s *Server) Close() error {
	// Let in-flight receipts and acks settle first: disconnecting a whatsmeow client while it is sending
	// trips a data race inside whatsmeow's socket (see README).
	idleCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = s.WaitIdle(idleCtx, 150*time.Millisecond)
	cancel()
	s.mu.Lock()
	phones := s.phones
	s.phones = nil
	s.mu.Unlock()
	for _, p := range phones {
		p.Close()
	}
	err := s.Stop()
	if s.tempDir {
		if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
			err = fmt.Errorf("remove simulator directory: %w", rmErr)
		}
	}
	return err
}

func (s *Server) now() time.Time { return time.Now() }

// debugWriter turns net/http's error log lines into debug-level structured log entries.
type debugWriter struct{ log zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (s *Server) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// WaitIdle waits until no stanza has crossed any connection for the quiet period, that is until every
// client has handled what it was sent and answered it. Tests call it before disconnecting clients.
func (s *Server) WaitIdle(ctx context.Context, quiet time.Duration) error {
	for {
		since := time.Since(time.Unix(0, s.lastActivity.Load()))
		if since >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the simulated network to go quiet: %w", ctx.Err())
		case <-time.After(quiet - since):
		}
	}
}
