package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/config"
)

// simulatorFile is where the benchmark tells its bridge process how to reach the simulator.
const simulatorFile = "simulator.json"

// simEndpoint is what a bridge in another process needs to trust one simulator: where it
// listens, its TLS CA and its Noise root key.
type simEndpoint struct {
	Addr      string `json:"addr"`
	CAPEM     []byte `json:"ca_pem"`
	NoiseRoot []byte `json:"noise_root"`
}

func (e *env) writeSimEndpoint() error {
	root := e.sim.NoiseRootKey()
	data, err := json.Marshal(simEndpoint{Addr: e.sim.Addr(), CAPEM: e.sim.CACertPEM(), NoiseRoot: root[:]})
	if err != nil {
		return fmt.Errorf("failed to encode the simulator endpoint: %w", err)
	}
	return os.WriteFile(filepath.Join(e.dir, simulatorFile), data, 0o600)
}

func readSimEndpoint(dir string) (*simEndpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, simulatorFile))
	if err != nil {
		return nil, fmt.Errorf("no simulator to connect to: %w", err)
	}
	var ep simEndpoint
	if err := json.Unmarshal(data, &ep); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", simulatorFile, err)
	}
	if len(ep.NoiseRoot) != len(whatsmeow.WACertPubKey) || ep.Addr == "" {
		return nil, fmt.Errorf("%s lacks the address or the root key", simulatorFile)
	}
	return &ep, nil
}

// httpClient dials the simulator for every host and trusts only its CA.
func (ep *simEndpoint) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ep.CAPEM) {
		return nil, errors.New("the simulator's CA certificate does not parse")
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ep.Addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: transport, Timeout: 2 * time.Minute}, nil
}

// BridgeChildArg, followed by the benchmark's data directory, makes the program named by
// BenchOptions.Executable run RunBridgeChild instead of what it does for people.
const BridgeChildArg = "--bench-bridge"

// BridgeChildOptions configure the benchmark's bridge process.
type BridgeChildOptions struct {
	// Dir is the benchmark's data directory: config.yaml and simulator.json.
	Dir string
	// CPUProfile, when set, receives a CPU profile of the measured burst: SIGUSR1 starts it
	// and SIGUSR2 writes it.
	CPUProfile string
}

// RunBridgeChild runs a bridge against a simulator in another process until ctx ends, so
// the benchmark can read the bridge's own CPU time from /proc without the simulator's and
// the phones'. Only cmd/causeway-demo reaches it, with a directory the benchmark wrote; it
// overwrites whatsmeow.WACertPubKey, so the production binary must never link it.
func RunBridgeChild(ctx context.Context, opts BridgeChildOptions) error {
	ep, err := readSimEndpoint(opts.Dir)
	if err != nil {
		return err
	}
	cfg, err := config.Load(filepath.Join(opts.Dir, configFile))
	if err != nil {
		return err
	}
	h, err := ep.httpClient()
	if err != nil {
		return err
	}
	root := [32]byte(ep.NoiseRoot)
	// Set once before any client exists: the variable is process-wide and read during handshakes.
	whatsmeow.WACertPubKey = root
	configure := func(cli *whatsmeow.Client) {
		cli.SetWebsocketHTTPClient(h)
		cli.SetPreLoginHTTPClient(h)
		cli.SetMediaHTTPClient(h)
	}
	logOut, err := os.OpenFile(filepath.Join(opts.Dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open the log file: %w", err)
	}
	defer logOut.Close()
	level, _ := zerolog.ParseLevel(cfg.Logging.Level)
	log := zerolog.New(logOut).Level(level).With().Timestamp().Str("process", "bench-bridge").Logger()
	if opts.CPUProfile != "" {
		stop := profileOnSignal(opts.CPUProfile, log)
		defer stop()
	}
	br, err := bridge.New(cfg, log, bridge.Options{ConfigureWhatsApp: configure, WhatsAppHTTP: h})
	if err != nil {
		return err
	}
	return br.Run(ctx)
}

// profileOnSignal profiles the CPU between SIGUSR1 and SIGUSR2, so the profile shows the
// measured burst and not the login and warm-up.
func profileOnSignal(path string, log zerolog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var f *os.File
		end := func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				log.Err(err).Msg("Cannot write the CPU profile")
			}
			log.Info().Str("path", path).Msg("CPU profile written")
			f = nil
		}
		for {
			select {
			case <-done:
				if f != nil {
					end()
				}
				return
			case sig := <-sigs:
				switch {
				case sig == syscall.SIGUSR1 && f == nil:
					var err error
					if f, err = os.Create(path); err != nil {
						log.Err(err).Msg("Cannot write the CPU profile")
						continue
					}
					if err := pprof.StartCPUProfile(f); err != nil {
						log.Err(err).Msg("Cannot start the CPU profile")
						f.Close()
						f = nil
						continue
					}
					log.Info().Str("path", path).Msg("CPU profile started")
				case sig == syscall.SIGUSR2 && f != nil:
					end()
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-finished
	}
}
