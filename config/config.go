// Package config loads, checks and updates the Causeway configuration file.
//
// The documented defaults are config.example.yaml at the repository root (embedded in the
// binary as causeway.ExampleConfig). Loading is strict: an unknown key or a bad value is an
// error that names the key path, so nothing starts on a configuration the operator did not mean.
package config

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"codeberg.org/causeway/causeway"
)

// PlaceholderToken marks an appservice token that registration generation must fill in.
const PlaceholderToken = "generate"

// Config is the whole configuration file.
type Config struct {
	Homeserver  Homeserver      `yaml:"homeserver"`
	Appservice  Appservice      `yaml:"appservice"`
	Database    Database        `yaml:"database"`
	Bridge      BridgeBehaviour `yaml:"bridge"`
	WhatsApp    WhatsApp        `yaml:"whatsapp"`
	Migration   Migration       `yaml:"migration"`
	Archive     Archive         `yaml:"archive"`
	Permissions Permissions     `yaml:"permissions"`
	Metrics     Metrics         `yaml:"metrics"`
	Logging     Logging         `yaml:"logging"`
	Encryption  Encryption      `yaml:"encryption"`
}

// Homeserver says where the Matrix homeserver is and what it is called.
type Homeserver struct {
	Address string `yaml:"address"`
	Domain  string `yaml:"domain"`
}

// Appservice configures the appservice listener, tokens, bot and puppets.
type Appservice struct {
	ID       string  `yaml:"id"`
	Hostname string  `yaml:"hostname"`
	Port     int     `yaml:"port"`
	Address  string  `yaml:"address"`
	ASToken  string  `yaml:"as_token"`
	HSToken  string  `yaml:"hs_token"`
	Bot      Bot     `yaml:"bot"`
	Puppets  Puppets `yaml:"puppets"`
}

// Bot is the bridge bot's identity.
type Bot struct {
	Username    string `yaml:"username"`
	Displayname string `yaml:"displayname"`
	Avatar      string `yaml:"avatar"`
}

// Puppets holds the templates that name the ghost users standing for WhatsApp contacts.
type Puppets struct {
	UsernameTemplate    string `yaml:"username_template"`
	DisplaynameTemplate string `yaml:"displayname_template"`

	username    *usernameTemplate
	displayname *displaynameTemplate
}

// Database selects and tunes the database.
type Database struct {
	Type            string `yaml:"type"`
	URI             string `yaml:"uri"`
	MaxOpenConns    int    `yaml:"max_open_conns"`
	MaxIdleConns    int    `yaml:"max_idle_conns"`
	ConnMaxIdleTime string `yaml:"conn_max_idle_time"`
	ConnMaxLifetime string `yaml:"conn_max_lifetime"`
}

// BridgeBehaviour is how chats behave on the Matrix side.
type BridgeBehaviour struct {
	Deletes  string `yaml:"deletes"`
	ViewOnce string `yaml:"view_once"`
	// StatusRoom bridges contacts' WhatsApp status updates into a per-user "WhatsApp Status"
	// room. Off, they are only archived.
	StatusRoom bool `yaml:"status_room"`
	// RedactionWait bounds how long a Matrix deletion waits for the message it deletes to
	// reach the bridge (Dendrite delivers the two by different paths, in either order).
	RedactionWait string  `yaml:"redaction_wait"`
	History       History `yaml:"history"`
	Import        Import  `yaml:"import"`
	// AdminRoom is where the bridge tells its administrators that capture stopped for someone:
	// empty for a room the bot creates on first use, or an existing room's ID.
	AdminRoom string `yaml:"admin_room"`
}

// WhatsApp configures the connection to WhatsApp.
type WhatsApp struct {
	// Version is the web client version to announce ("2.3000.1031080782"); empty fetches
	// the current one at start.
	Version string `yaml:"version"`
}

// ParseWAVersion reads a web client version such as "2.3000.1031080782".
func ParseWAVersion(s string) ([3]uint32, error) {
	var v [3]uint32
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("%q is not a version like 2.3000.1031080782", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return v, fmt.Errorf("%q is not a version like 2.3000.1031080782", s)
		}
		v[i] = uint32(n)
	}
	if v[0] == 0 {
		return v, fmt.Errorf("%q is not a version like 2.3000.1031080782", s)
	}
	return v, nil
}

// RedactionWaitDuration is RedactionWait parsed (validated at load).
func (b BridgeBehaviour) RedactionWaitDuration() time.Duration {
	d, _ := time.ParseDuration(b.RedactionWait)
	return d
}

// Import bounds chat-export imports (the bot's import command and `causeway import`).
type Import struct {
	// MaxMessages refuses an export with more messages, before anything is imported.
	MaxMessages int `yaml:"max_messages"`
}

// History limits what WhatsApp's history sync backfills into new rooms after a login, and
// how media in it and on-demand backfill behave. 0 means unlimited for the numeric limits.
type History struct {
	MaxChats           int    `yaml:"max_chats"`
	MaxAgeDays         int    `yaml:"max_age_days"`
	MaxMessagesPerChat int    `yaml:"max_messages_per_chat"`
	Media              string `yaml:"media"`
	OnDemandTimeout    string `yaml:"on_demand_timeout"`
}

// History media modes.
const (
	HistoryMediaEager = "eager"
	HistoryMediaLazy  = "lazy"
	HistoryMediaSkip  = "skip"
)

// OnDemandTimeoutDuration is OnDemandTimeout parsed (validated at load).
func (h History) OnDemandTimeoutDuration() time.Duration {
	d, _ := time.ParseDuration(h.OnDemandTimeout)
	return d
}

// Migration configures how WhatsApp contacts are matched to Matrix accounts.
type Migration struct {
	DirectoryFile       string `yaml:"directory_file"`
	UserDirectorySearch bool   `yaml:"user_directory_search"`
}

// Archive configures the records archive.
type Archive struct {
	Enabled            bool           `yaml:"enabled"`
	Dir                string         `yaml:"dir"`
	Origin             string         `yaml:"origin"`
	RetentionDays      int            `yaml:"retention_days"`
	RetentionChats     map[string]int `yaml:"retention_chats"`
	RetentionUsers     map[string]int `yaml:"retention_users"`
	CheckpointEvery    int            `yaml:"checkpoint_every"`
	CheckpointInterval string         `yaml:"checkpoint_interval"`
	Receipts           bool           `yaml:"receipts"`
}

// CheckpointIntervalDuration is CheckpointInterval parsed (validated at load).
func (a Archive) CheckpointIntervalDuration() time.Duration {
	d, _ := time.ParseDuration(a.CheckpointInterval)
	return d
}

// Metrics configures GET /metrics on the appservice listener.
type Metrics struct {
	// PerUserLabels labels per-login series with the user's Matrix ID, which tells anyone
	// who can scrape who uses the bridge.
	PerUserLabels bool   `yaml:"per_user_labels"`
	Token         string `yaml:"token"`
}

// Logging configures the process log.
type Logging struct {
	Level         string `yaml:"level"`
	Format        string `yaml:"format"`
	RedactNumbers bool   `yaml:"redact_numbers"`
}

// Default returns the documented defaults, with no homeserver and no permissions set.
func Default() *Config {
	cfg, err := parse(causeway.ExampleConfig)
	if err != nil {
		// The example is embedded and covered by tests; failing here is a build defect.
		panic(fmt.Sprintf("embedded config.example.yaml does not parse: %v", err))
	}
	// The example's homeserver and permissions name example.org: an operator must write
	// their own, never inherit ours.
	cfg.Homeserver = Homeserver{}
	cfg.Permissions = nil
	return cfg
}

// Load reads, decodes and validates the file at path. The error names every bad key path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read config: %w", err)
	}
	cfg := Default()
	if err := decodeInto(cfg, data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes and validates configuration bytes on top of the defaults.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	if err := decodeInto(cfg, data); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parse(data []byte) (*Config, error) {
	var cfg Config
	if err := decodeInto(&cfg, data); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func decodeInto(cfg *Config, data []byte) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil
	}
	return decodeNode(root.Content[0], cfg, "")
}

// TokensGenerated reports whether both appservice tokens have been filled in.
func (c *Config) TokensGenerated() bool {
	return c.Appservice.ASToken != PlaceholderToken && c.Appservice.HSToken != PlaceholderToken &&
		c.Appservice.ASToken != "" && c.Appservice.HSToken != ""
}
