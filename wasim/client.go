package wasim

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// ConfigureClient points a whatsmeow client at this simulator, in-process: its websocket and media HTTP
// clients dial the simulator whatever host they ask for and trust only the simulator's CA, and the
// process-wide Noise root key becomes the simulator's.
//
// This is the one way to make whatsmeow trust the simulator. Only tests and cmd/causeway-demo may call
// it; no configuration or environment variable reaches it, and the production binary does not link it.
func (s *Server) ConfigureClient(cli *whatsmeow.Client) {
	root := s.NoiseRootKey()
	// Compare first: the key is the same for every simulator in the process, and writing it while
	// another client is in its handshake would be a data race.
	if whatsmeow.WACertPubKey != root {
		whatsmeow.WACertPubKey = root
	}
	h := s.HTTPClient()
	cli.SetWebsocketHTTPClient(h)
	cli.SetPreLoginHTTPClient(h)
	cli.SetMediaHTTPClient(h)
}

// HTTPClient returns an HTTP client whose every connection goes to the simulator over TLS verified
// against the simulator's CA. The address is looked up per dial, so it survives Restart.
func (s *Server) HTTPClient() *http.Client {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", s.Addr())
		},
		TLSClientConfig:     &tls.Config{RootCAs: s.keys.ca.pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: transport, Timeout: 2 * time.Minute}
}

// NewClient creates a whatsmeow client for a device and configures it for this simulator.
func (s *Server) NewClient(device *store.Device, log zerolog.Logger) *whatsmeow.Client {
	cli := whatsmeow.NewClient(device, waLog.Zerolog(log))
	s.ConfigureClient(cli)
	return cli
}
