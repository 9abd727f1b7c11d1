package devserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/synapseadmin"
)

// DendriteOptions configures a local Dendrite.
type DendriteOptions struct {
	// Dir holds the config, signing key, databases, media and log. It is created when
	// missing; an existing Dir keeps its databases, so Stop then Start resumes the server.
	Dir string
	// ServerName defaults to "localhost".
	ServerName string
	// RegistrationFile is an appservice registration to load, if any.
	RegistrationFile string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// PostgresURI, when set, stores everything in that PostgreSQL database instead of SQLite.
	PostgresURI string
	Log         zerolog.Logger
	// OnCrash, when set, is called (on its own goroutine) when the server exits without Stop or
	// Kill having asked it to, with how it ended and the end of its log: a test suite sharing
	// one server fails at once, naming why, instead of waiting out every test's timeout.
	OnCrash func(exit error, logTail string)
}

// Dendrite is a running (or stopped) local homeserver.
type Dendrite struct {
	URL          string
	ServerName   string
	SharedSecret string

	opts   DendriteOptions
	binDir string
	cmd    *exec.Cmd
	exited chan struct{}
	// ending is set by Stop and Kill before they signal, so the exit they cause is no crash.
	ending atomic.Bool
}

// TempDir makes a fresh directory for a server's state, on tmpfs when the machine has one:
// Dendrite on SQLite is I/O-bound, and tmpfs makes it about twice as fast and far steadier.
func TempDir(prefix string) (string, error) {
	for _, base := range []string{"/dev/shm", ""} {
		if base != "" {
			if st, err := os.Stat(base); err != nil || !st.IsDir() {
				continue
			}
		}
		if dir, err := os.MkdirTemp(base, prefix); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("failed to create a temporary directory")
}

// StartDendrite builds Dendrite if needed, writes its config and key into opts.Dir, starts
// it on loopback and waits until it answers.
func StartDendrite(ctx context.Context, opts DendriteOptions) (*Dendrite, error) {
	if opts.Dir == "" {
		return nil, errors.New("DendriteOptions.Dir is required")
	}
	if opts.ServerName == "" {
		opts.ServerName = "localhost"
	}
	binDir, err := EnsureDendrite(ctx, opts.Log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", opts.Dir, err)
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	if opts.Port == 0 {
		if opts.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	d := &Dendrite{
		URL:        "http://127.0.0.1:" + strconv.Itoa(opts.Port),
		ServerName: opts.ServerName,
		opts:       opts,
		binDir:     binDir,
	}
	if d.SharedSecret, err = d.loadOrCreateSecret(); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(opts.Dir, "matrix_key.pem")
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "generate-keys"), "--private-key", keyPath).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("failed to generate the Dendrite signing key: %w\n%s", err, out)
		}
	}
	if err := d.writeConfig(); err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Dendrite) loadOrCreateSecret() (string, error) {
	path := filepath.Join(d.opts.Dir, "shared_secret")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b), nil
	}
	buf := make([]byte, 18)
	_, _ = rand.Read(buf)
	secret := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		return "", fmt.Errorf("failed to store the registration secret: %w", err)
	}
	return secret, nil
}

// The config is written by hand rather than by generate-config: every key we rely on is
// visible here, and components without their own SQLite URI would take the PostgreSQL path.
var dendriteConfig = template.Must(template.New("dendrite").Parse(`version: 2
global:
  server_name: {{.ServerName}}
  private_key: {{.Dir}}/matrix_key.pem
  disable_federation: true
  key_validity_period: 168h0m0s
  jetstream:
    in_memory: true
    storage_path: {{.Dir}}/jetstream
  cache:
    max_size_estimated: 256mb
{{- if .PostgresURI}}
  database:
    connection_string: {{printf "%q" .PostgresURI}}
    max_open_conns: 50
{{- end}}
client_api:
  registration_disabled: true
  registration_shared_secret: {{.SharedSecret}}
  rate_limiting:
    enabled: false
app_service_api:
  disable_tls_validation: true
  config_files:
{{- if .RegistrationFile}}
  - {{.RegistrationFile}}
{{- else}} []
{{- end}}
federation_api:
  key_perspectives: []
{{- if not .PostgresURI}}
  database:
    connection_string: file:{{.Dir}}/federationapi.db
key_server:
  database:
    connection_string: file:{{.Dir}}/keyserver.db
{{- end}}
media_api:
  base_path: {{.Dir}}/media
{{- if not .PostgresURI}}
  database:
    connection_string: file:{{.Dir}}/mediaapi.db
room_server:
  database:
    connection_string: file:{{.Dir}}/roomserver.db
relay_api:
  database:
    connection_string: file:{{.Dir}}/relayapi.db
mscs:
  database:
    connection_string: file:{{.Dir}}/mscs.db
{{- end}}
sync_api:
  search:
    enabled: false
{{- if not .PostgresURI}}
  database:
    connection_string: file:{{.Dir}}/syncapi.db
{{- end}}
user_api:
  bcrypt_cost: 4
{{- if not .PostgresURI}}
  account_database:
    connection_string: file:{{.Dir}}/userapi.db
{{- end}}
logging:
- type: std
  level: warn
`))

func (d *Dendrite) writeConfig() error {
	regFile := d.opts.RegistrationFile
	if regFile != "" {
		abs, err := filepath.Abs(regFile)
		if err != nil {
			return err
		}
		regFile = abs
	}
	var buf bytes.Buffer
	err := dendriteConfig.Execute(&buf, map[string]string{
		"ServerName": d.ServerName, "Dir": d.opts.Dir, "SharedSecret": d.SharedSecret,
		"RegistrationFile": regFile, "PostgresURI": d.opts.PostgresURI,
	})
	if err != nil {
		return fmt.Errorf("failed to render the Dendrite config: %w", err)
	}
	return os.WriteFile(d.ConfigPath(), buf.Bytes(), 0o600)
}

// ConfigPath is the dendrite.yaml this server runs with.
func (d *Dendrite) ConfigPath() string { return filepath.Join(d.opts.Dir, "dendrite.yaml") }

// LogPath is where Dendrite's output goes.
func (d *Dendrite) LogPath() string { return filepath.Join(d.opts.Dir, "dendrite.log") }

// Start (re)starts a stopped server on the same port and state, and waits until it answers.
func (d *Dendrite) Start(ctx context.Context) error {
	if d.cmd != nil {
		return errors.New("dendrite is already running")
	}
	logFile, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open the Dendrite log: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(d.opts.Port)
	cmd := exec.Command(filepath.Join(d.binDir, "dendrite"), "-config", d.ConfigPath(), "-http-bind-address", addr)
	cmd.Dir = d.opts.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Dendrite dies with us: a test binary killed by a timeout must not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := time.Now()
	d.exited = make(chan struct{})
	exited := d.exited
	done, err := StartPinned(cmd)
	if err != nil {
		logFile.Close()
		return fmt.Errorf("failed to start Dendrite: %w", err)
	}
	d.ending.Store(false)
	onCrash := d.opts.OnCrash
	go func() { // ends with the process
		werr := <-done
		logFile.Close()
		close(exited)
		if onCrash != nil && !d.ending.Load() {
			if werr == nil {
				werr = errors.New("exit status 0")
			}
			onCrash(werr, tail(d.LogPath(), 40))
		}
	}()
	d.cmd = cmd
	if err := d.waitReady(ctx, 60*time.Second); err != nil {
		_ = d.Stop()
		return fmt.Errorf("%w (log: %s)\n%s", err, d.LogPath(), tail(d.LogPath(), 20))
	}
	d.opts.Log.Debug().Str("url", d.URL).Dur("startup", time.Since(started)).Msg("Dendrite is ready")
	return nil
}

func (d *Dendrite) waitReady(ctx context.Context, timeout time.Duration) error {
	return waitServing(ctx, d.exited, timeout, 50*time.Millisecond, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/_matrix/client/versions", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/_matrix/client/versions answered %s", resp.Status)
		}
		return nil
	})
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s). Its state stays in Dir.
func (d *Dendrite) Stop() error {
	if d.cmd == nil {
		return nil
	}
	d.ending.Store(true)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
	return nil
}

// Kill ends the server with SIGKILL, as a power cut would: what it held only in memory (its
// transaction IDs, its in-memory event streams) is gone. Start brings it back on its state.
func (d *Dendrite) Kill() error {
	if d.cmd == nil {
		return nil
	}
	d.ending.Store(true)
	if err := d.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("failed to kill Dendrite: %w", err)
	}
	<-d.exited
	d.cmd = nil
	return nil
}

// PID is the running server's process ID, 0 when it is stopped.
func (d *Dendrite) PID() int {
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// RegisterUser creates a real Matrix account through the shared-secret admin API and
// returns a client logged in as it.
func (d *Dendrite) RegisterUser(ctx context.Context, localpart, password string, admin bool) (*mautrix.Client, error) {
	anon, err := mautrix.NewClient(d.URL, "", "")
	if err != nil {
		return nil, err
	}
	// Dendrite's HMAC does not cover the user type, so it must stay empty.
	resp, err := (&synapseadmin.Client{Client: anon}).SharedSecretRegister(ctx, d.SharedSecret, synapseadmin.ReqSharedSecretRegister{
		Username: localpart, Password: password, Admin: admin,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to register %s: %w", localpart, err)
	}
	return d.Client(resp.UserID, resp.AccessToken)
}

// Client returns a client for an existing access token.
func (d *Dendrite) Client(userID id.UserID, token string) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(d.URL, userID, token)
	if err != nil {
		return nil, err
	}
	cli.DefaultHTTPRetries = 2
	return cli, nil
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	n := 0
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n++
			if n > lines {
				return string(data[i+1:])
			}
		}
	}
	return string(data)
}
