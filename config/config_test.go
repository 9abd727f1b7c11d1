package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway"
)

// exampleWith returns config.example.yaml with the given line replacements applied.
func exampleWith(t *testing.T, replacements ...string) string {
	t.Helper()
	s := string(causeway.ExampleConfig)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(s, replacements[i]) {
			t.Fatalf("example config has no %q", replacements[i])
		}
		s = strings.Replace(s, replacements[i], replacements[i+1], 1)
	}
	return s
}

func TestExampleLoads(t *testing.T) {
	cfg, err := Parse(causeway.ExampleConfig)
	if err != nil {
		t.Fatalf("config.example.yaml does not load: %v", err)
	}
	def := Default()
	// The example differs from the defaults only in the homeserver and permissions,
	// which an operator must write.
	if cfg.Appservice.Port != def.Appservice.Port || cfg.Database != def.Database || cfg.Logging != def.Logging {
		t.Errorf("example and defaults disagree: %+v vs %+v", cfg, def)
	}
	if cfg.Homeserver.Domain != "example.org" || def.Homeserver.Domain != "" {
		t.Errorf("homeserver: example %q, default %q", cfg.Homeserver.Domain, def.Homeserver.Domain)
	}
	if len(def.Permissions) != 0 {
		t.Errorf("default permissions should be empty, got %v", def.Permissions)
	}
	if got := def.Bridge.RedactionWaitDuration(); got != 2*time.Minute {
		t.Errorf("bridge.redaction_wait defaults to %v, want 2m", got)
	}
}

func TestBadValuesNameTheKeyPath(t *testing.T) {
	tests := []struct {
		name    string
		replace []string
		want    string
	}{
		{"database type", []string{"type: sqlite", "type: oracle"}, `database.type: "oracle" is not one of sqlite, postgres`},
		{"unknown key", []string{"    max_idle_conns: 2", "    max_idle_conns: 2\n    colour: blue"}, "database.colour: unknown key"},
		{"unknown section", []string{"logging:", "frobnicate: {}\nlogging:"}, "frobnicate: unknown key"},
		{"port not a number", []string{"port: 29318", "port: lots"}, `appservice.port: "lots" is not a whole number`},
		{"port out of range", []string{"port: 29318", "port: 70000"}, "appservice.port: 70000 is not a TCP port"},
		{"homeserver address", []string{"address: http://localhost:8008", "address: localhost:8008"}, `homeserver.address: "localhost:8008" is not an http:// or https:// URL`},
		{"missing domain", []string{"domain: example.org", "domain: \"\""}, "homeserver.domain: must be set"},
		{"permission level", []string{`"*": relay`, `"*": superuser`}, `permissions["*"]: "superuser" is not one of relay, user, records, admin`},
		{"permission key", []string{`"@admin:example.org": admin`, `"not a user": admin`}, `permissions["not a user"]: "not a user" is not`},
		{"log level", []string{"level: info", "level: loud"}, `logging.level: "loud" is not one of`},
		{"username template without number", []string{"username_template: whatsapp_{{.}}", "username_template: whatsapp"}, "appservice.puppets.username_template: \"whatsapp\" must use {{.}}"},
		{"username template broken", []string{"username_template: whatsapp_{{.}}", "username_template: whatsapp_{{."}, "appservice.puppets.username_template: \"whatsapp_{{.\" is not a valid Go template"},
		{"bot in puppet namespace", []string{"username: whatsappbot", "username: whatsapp_123"}, "appservice.bot.username: \"whatsapp_123\" falls inside the puppet namespace"},
		{"postgres uri", []string{"type: sqlite", "type: postgres"}, `database.uri: "causeway.db" is not a postgres:// URI`},
		{"idle above open", []string{"max_idle_conns: 2", "max_idle_conns: 50"}, "database.max_idle_conns: 50 must be between 0 and max_open_conns (20)"},
		{"duration", []string{`conn_max_lifetime: ""`, "conn_max_lifetime: forever"}, `database.conn_max_lifetime: "forever" is not a positive duration`},
		{"section not a mapping", []string{"logging:\n    # trace", "logging: loud\n    # trace"}, "not valid YAML"},
		{"duplicate key", []string{"    format: auto", "    format: auto\n    format: json"}, "logging.format: is set twice"},
		{"history chats negative", []string{"max_chats: 0", "max_chats: -1"}, "bridge.history.max_chats: -1 must be 0 (unlimited) or more"},
		{"history age not a number", []string{"max_age_days: 365", "max_age_days: a year"}, `bridge.history.max_age_days: "a year" is not a whole number`},
		{"history per chat negative", []string{"max_messages_per_chat: 1000", "max_messages_per_chat: -5"}, "bridge.history.max_messages_per_chat: -5 must be 0"},
		{"history media mode", []string{"media: eager", "media: later"}, `bridge.history.media: "later" is not one of eager, lazy, skip`},
		{"history timeout", []string{"on_demand_timeout: 2m", "on_demand_timeout: 0s"}, `bridge.history.on_demand_timeout: "0s" is not a positive duration`},
		{"admin room not a room ID", []string{`admin_room: ""`, "admin_room: '#admins:example.org'"}, `bridge.admin_room: "#admins:example.org" is not a room ID`},
		{"whatsapp version", []string{`version: ""`, "version: 2.3000"}, `whatsapp.version: "2.3000" is not a version like 2.3000.1031080782`},
		{"whatsapp version words", []string{`version: ""`, "version: latest"}, `whatsapp.version: "latest" is not a version`},
		{"redaction wait", []string{"redaction_wait: 2m", "redaction_wait: soon"}, `bridge.redaction_wait: "soon" is not a positive duration`},
		{"history unknown key", []string{"media: eager", "media: eager\n        max_chat: 3"}, "bridge.history.max_chat: unknown key (known here: max_chats, max_age_days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(exampleWith(t, tt.replace...)))
			if err == nil {
				t.Fatalf("accepted a bad config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestHistoryLimits(t *testing.T) {
	def := Default().Bridge.History
	if def.MaxChats != 0 || def.MaxAgeDays != 365 || def.MaxMessagesPerChat != 1000 || def.Media != HistoryMediaEager ||
		def.OnDemandTimeoutDuration() != 2*time.Minute {
		t.Errorf("history defaults = %+v", def)
	}
	tests := []struct {
		name    string
		replace []string
		want    History
	}{
		{"unlimited", []string{"max_age_days: 365", "max_age_days: 0", "max_messages_per_chat: 1000", "max_messages_per_chat: 0"},
			History{MaxChats: 0, MaxAgeDays: 0, MaxMessagesPerChat: 0, Media: "eager", OnDemandTimeout: "2m"}},
		{"tight", []string{"max_chats: 0", "max_chats: 5", "max_age_days: 365", "max_age_days: 30", "media: eager", "media: skip"},
			History{MaxChats: 5, MaxAgeDays: 30, MaxMessagesPerChat: 1000, Media: "skip", OnDemandTimeout: "2m"}},
		{"lazy media, quick timeout", []string{"media: eager", "media: lazy", "on_demand_timeout: 2m", "on_demand_timeout: 15s"},
			History{MaxAgeDays: 365, MaxMessagesPerChat: 1000, Media: "lazy", OnDemandTimeout: "15s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(exampleWith(t, tt.replace...)))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Bridge.History != tt.want {
				t.Errorf("bridge.history = %+v, want %+v", cfg.Bridge.History, tt.want)
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	cfg, err := Parse([]byte(exampleWith(t,
		"permissions:\n", "permissions:\n    other.org: records\n    \"@bob:other.org\": relay\n")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user id.UserID
		want Level
	}{
		{"@admin:example.org", LevelAdmin},
		{"@someone:example.org", LevelUser},
		{"@carol:other.org", LevelRecords},
		{"@bob:other.org", LevelRelay},
		{"@eve:elsewhere.net", LevelRelay},
	}
	for _, tt := range tests {
		if got := cfg.Permissions.LevelFor(tt.user); got != tt.want {
			t.Errorf("LevelFor(%s) = %s, want %s", tt.user, got, tt.want)
		}
	}
	// Without "*", strangers get nothing.
	cfg2, err := Parse([]byte(exampleWith(t, `    "*": relay`+"\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg2.Permissions.LevelFor("@eve:elsewhere.net"); got != LevelNone {
		t.Errorf("stranger got %s, want none", got)
	}
}

func TestPuppetNames(t *testing.T) {
	cfg, err := Parse([]byte(exampleWith(t, "domain: example.org", "domain: gov.example")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.PuppetUserID("4915550001"); got != "@whatsapp_4915550001:gov.example" {
		t.Errorf("PuppetUserID = %s", got)
	}
	if n, ok := cfg.IsPuppet("@whatsapp_4915550001:gov.example"); !ok || n != "4915550001" {
		t.Errorf("IsPuppet = %q %v", n, ok)
	}
	for _, notPuppet := range []id.UserID{"@whatsappbot:gov.example", "@whatsapp_49:other.example", "@alice:gov.example"} {
		if _, ok := cfg.IsPuppet(notPuppet); ok {
			t.Errorf("IsPuppet(%s) = true", notPuppet)
		}
	}
	names := []struct {
		in   ContactNames
		want string
	}{
		{ContactNames{FullName: "Alice Example", PushName: "Ali", Phone: "+491"}, "Alice Example (WhatsApp)"},
		{ContactNames{PushName: "Ali", Phone: "+491"}, "Ali (WhatsApp)"},
		{ContactNames{Phone: "+491"}, "+491 (WhatsApp)"},
	}
	for _, tt := range names {
		if got := cfg.PuppetDisplayname(tt.in); got != tt.want {
			t.Errorf("PuppetDisplayname(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGenerateRegistration is the -g path: tokens generated, written back, and the
// registration's namespaces, tokens and url agree with the reloaded config.
func TestGenerateRegistration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	src := exampleWith(t, "address: http://localhost:8008", "address: https://matrix.gov.example",
		"domain: example.org", "domain: gov.example")
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TokensGenerated() {
		t.Fatal("placeholder tokens count as generated")
	}
	reg := cfg.Registration()
	if err := cfg.WriteTokens(path); err != nil {
		t.Fatal(err)
	}
	regPath := filepath.Join(dir, "registration.yaml")
	if err := SaveRegistration(reg, regPath); err != nil {
		t.Fatal(err)
	}

	reloaded, err := Load(path)
	if err != nil {
		t.Fatalf("config with written tokens does not load: %v", err)
	}
	loadedReg, err := appservice.LoadRegistration(regPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reloaded.TokensGenerated() || len(reloaded.Appservice.ASToken) < 32 {
		t.Fatalf("tokens not written back: %q", reloaded.Appservice.ASToken)
	}
	if loadedReg.AppToken != reloaded.Appservice.ASToken || loadedReg.ServerToken != reloaded.Appservice.HSToken {
		t.Errorf("tokens disagree between registration and config")
	}
	if loadedReg.AppToken == loadedReg.ServerToken {
		t.Errorf("as_token and hs_token are the same")
	}
	if loadedReg.URL != reloaded.Appservice.Address || loadedReg.ID != "causeway" || loadedReg.SenderLocalpart != "whatsappbot" {
		t.Errorf("registration url/id/sender = %q %q %q", loadedReg.URL, loadedReg.ID, loadedReg.SenderLocalpart)
	}
	ns := regexp.MustCompile("^" + loadedReg.Namespaces.UserIDs[0].Regex + "$")
	if !ns.MatchString(string(reloaded.PuppetUserID("4915550001"))) || ns.MatchString("@whatsapp_1:example.org") ||
		ns.MatchString("@alice:gov.example") || !loadedReg.Namespaces.UserIDs[0].Exclusive {
		t.Errorf("puppet namespace %q is wrong", loadedReg.Namespaces.UserIDs[0].Regex)
	}
	// Comments and the other values survive the write-back.
	written, _ := os.ReadFile(path)
	if !strings.Contains(string(written), "# Who may use the bridge.") || !strings.Contains(string(written), "https://matrix.gov.example") {
		t.Errorf("write-back lost comments or values:\n%s", written)
	}
	// Once it holds the tokens, the config is the owner's only, whatever it was before.
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("config with tokens has mode %v, want 0600", st.Mode().Perm())
	}
	// A second -g keeps the tokens, so an installed registration stays valid.
	again := reloaded.Registration()
	if again.AppToken != loadedReg.AppToken {
		t.Errorf("regenerating replaced existing tokens")
	}
}
