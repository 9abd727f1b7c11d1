// Package demo runs Causeway end to end on one machine with nothing installed beforehand: a
// simulated WhatsApp network (wasim), a local Dendrite (internal/harness/devserver, the same
// code the integration tests use) and the bridge, then plays a scripted conversation and
// checks every step on the other side. cmd/causeway-demo is its only caller but tests; the simulator
// wiring it passes to the bridge is reachable from nowhere else, in particular not from a
// config file or the environment, and not from the causeway binary, which does not link it.
package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
	"codeberg.org/causeway/causeway/wasim"
)

// Names of the files and directories the demo keeps in its data directory.
const (
	configFile       = "config.yaml"
	registrationFile = "registration.yaml"
	logFile          = "causeway.log"
	dendriteDir      = "dendrite"
	wasimDir         = "wasim"
	archiveDir       = "archive"
	databaseFile     = "causeway.db"
)

// env is the running world of one demo: the simulator, the homeserver and a bridge config
// written to disk. The bridge itself is started by the caller, in this process or another.
type env struct {
	dir     string
	log     zerolog.Logger
	logFile *os.File
	sim     *wasim.Server
	hs      *devserver.Dendrite
	pg      *devserver.Postgres // the bridge's database server, when it is PostgreSQL
	cfg     *config.Config
	cfgPath string
}

// envOptions say how the world is set up.
type envOptions struct {
	Archive bool
	// Users are the Matrix users the bridge lets log in.
	Users []string
	// LogLevel of the bridge; the demo logs everything, the benchmark what production logs.
	LogLevel string
	// Database is the bridge's: "sqlite" (the default) in the data directory, or "postgres"
	// in a throwaway PostgreSQL started for it.
	Database string
	// Encrypted lets the bridge work in encrypted rooms and create its portals encrypted.
	Encrypted bool
}

// startEnv creates dir's contents, starts the simulator and Dendrite and writes the bridge
// config and registration. dir must exist and hold no earlier demo.
func startEnv(ctx context.Context, dir string, opts envOptions, p *printer) (_ *env, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve the data directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, configFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a demo (%s); give --data an empty or new directory", dir, configFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create the data directory: %w", err)
	}
	e := &env{dir: dir}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.logFile, err = os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("failed to open the log file: %w", err)
	}
	e.log = zerolog.New(e.logFile).With().Timestamp().Logger()

	p.Linef("Starting the simulated WhatsApp network")
	if e.sim, err = wasim.Start(ctx, wasim.Options{Dir: filepath.Join(dir, wasimDir), Log: e.log.Level(zerolog.InfoLevel)}); err != nil {
		return nil, fmt.Errorf("failed to start the WhatsApp simulator: %w", err)
	}
	hsPort, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	asPort, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	if e.cfg, err = bridgeConfig(dir, hsPort, asPort, opts); err != nil {
		return nil, err
	}
	if opts.Database == "postgres" {
		p.Linef("Starting a throwaway PostgreSQL for the bridge's database")
		if e.pg, err = devserver.StartPostgres(ctx); err != nil {
			return nil, fmt.Errorf("failed to start PostgreSQL: %w", err)
		}
		if e.cfg.Database.URI, err = e.pg.CreateDatabase(ctx, "causeway"); err != nil {
			return nil, err
		}
		e.cfg.Database.Type = "postgres"
	}
	e.cfgPath = filepath.Join(dir, configFile)
	if err := writeConfig(e.cfg, e.cfgPath); err != nil {
		return nil, err
	}
	regPath := filepath.Join(dir, registrationFile)
	if err := config.SaveRegistration(e.cfg.Registration(), regPath); err != nil {
		return nil, err
	}
	if _, err := devserver.EnsureDendrite(ctx, e.log); err != nil {
		return nil, err
	}
	p.Linef("Starting a local Matrix homeserver (Dendrite %s) on 127.0.0.1:%d", devserver.DendriteVersion, hsPort)
	e.hs, err = devserver.StartDendrite(ctx, devserver.DendriteOptions{
		Dir: filepath.Join(dir, dendriteDir), Port: hsPort, RegistrationFile: regPath, Log: e.log,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to start Dendrite: %w", err)
	}
	return e, nil
}

// bridgeConfig is the config a newcomer could have written for this machine. Every path in
// it is absolute, so `causeway archive ... -c DIR/config.yaml` works from any directory.
func bridgeConfig(dir string, hsPort, asPort int, opts envOptions) (*config.Config, error) {
	cfg := config.Default()
	cfg.Homeserver = config.Homeserver{Address: fmt.Sprintf("http://127.0.0.1:%d", hsPort), Domain: "localhost"}
	cfg.Appservice.Hostname = "127.0.0.1"
	cfg.Appservice.Port = asPort
	cfg.Appservice.Address = fmt.Sprintf("http://127.0.0.1:%d", asPort)
	cfg.Database.Type = "sqlite"
	cfg.Database.URI = filepath.Join(dir, databaseFile)
	cfg.Archive.Enabled = opts.Archive
	cfg.Archive.Dir = filepath.Join(dir, archiveDir)
	cfg.Archive.Origin = "causeway.demo.localhost/archive"
	cfg.Permissions = config.Permissions{}
	for _, u := range opts.Users {
		cfg.Permissions[u] = "records"
	}
	cfg.Encryption.Allow, cfg.Encryption.Default = opts.Encrypted, opts.Encrypted
	cfg.Logging.Level = cmp.Or(opts.LogLevel, "debug")
	cfg.Logging.Format = "json"
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("the generated config is invalid: %w", err)
	}
	cfg.Registration() // fills in fresh tokens
	return cfg, nil
}

const configHeader = `# Written by "causeway-demo" for its local Dendrite and simulated WhatsApp network.
# Every key is documented in config.example.yaml. Try:
#   causeway archive status -c %s
#   causeway archive verify -c %s
`

// writeConfig writes cfg as YAML and reads it back through config.Load, so the file on
// disk is proven to be one the bridge and the archive CLI accept.
func writeConfig(cfg *config.Config, path string) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("failed to encode the config: %w", err)
	}
	data = append([]byte(fmt.Sprintf(configHeader, path, path)), data...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("failed to write the config: %w", err)
	}
	back, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("the written config does not load: %w", err)
	}
	if back.Appservice.ASToken != cfg.Appservice.ASToken || back.Database.URI != cfg.Database.URI {
		return errors.New("the written config does not read back as written")
	}
	return nil
}

// close stops what startEnv started; the data directory stays.
func (e *env) close() {
	if e.hs != nil {
		_ = e.hs.Stop()
	}
	if e.pg != nil {
		_ = e.pg.Stop()
	}
	if e.sim != nil {
		_ = e.sim.Close()
	}
	if e.logFile != nil {
		_ = e.logFile.Close()
	}
}
