package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"maunium.net/go/mautrix/appservice"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/harness/configtest"
)

func TestGenerateRegistrationFromEditedExample(t *testing.T) {
	cfgPath := configtest.WriteExample(t,
		"address: http://localhost:8008", "address: https://matrix.ministry.example",
		"domain: example.org", "domain: ministry.example")
	regPath := filepath.Join(filepath.Dir(cfgPath), "registration.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", cfgPath, "-g", "-r", regPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := appservice.LoadRegistration(regPath)
	if err != nil {
		t.Fatal(err)
	}
	if reg.AppToken != cfg.Appservice.ASToken || reg.ServerToken != cfg.Appservice.HSToken || !cfg.TokensGenerated() {
		t.Errorf("tokens: registration %q/%q, config %q/%q", reg.AppToken, reg.ServerToken, cfg.Appservice.ASToken, cfg.Appservice.HSToken)
	}
	if reg.URL != cfg.Appservice.Address || reg.SenderLocalpart != cfg.Appservice.Bot.Username || reg.ID != cfg.Appservice.ID {
		t.Errorf("registration url/sender/id = %q %q %q", reg.URL, reg.SenderLocalpart, reg.ID)
	}
	puppets := regexp.MustCompile("^" + reg.Namespaces.UserIDs[0].Regex + "$")
	if !puppets.MatchString("@whatsapp_4915550001:ministry.example") || puppets.MatchString("@whatsapp_4915550001:example.org") {
		t.Errorf("puppet namespace %q does not follow the config", reg.Namespaces.UserIDs[0].Regex)
	}
	if !strings.Contains(stdout.String(), regPath) {
		t.Errorf("output does not say where the registration went: %q", stdout.String())
	}
}

func TestBadConfigExitsNonZeroWithKeyPath(t *testing.T) {
	tests := []struct {
		name    string
		replace []string
		want    string
	}{
		{"bad database type", []string{"type: sqlite", "type: oracle"}, `database.type: "oracle" is not one of sqlite, postgres`},
		{"unknown key", []string{"    level: info", "    level: info\n    colour: true"}, "logging.colour: unknown key"},
		{"bad permission", []string{`"*": relay`, `"*": root`}, `permissions["*"]: "root" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configtest.WriteExample(t, tt.replace...)
			var stdout, stderr bytes.Buffer
			code := run([]string{"-c", path}, &stdout, &stderr)
			if code == 0 {
				t.Fatal("a bad config exited 0")
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not name %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !regexp.MustCompile(`^causeway \S+ \(commit \S+, go1\.\d+`).MatchString(stdout.String()) {
		t.Errorf("--version printed %q", stdout.String())
	}
	if want := "WhatsApp Web version " + bridge.BuiltInWhatsAppVersion() + " built in"; !strings.Contains(stdout.String(), want) {
		t.Errorf("--version printed %q, want %q", stdout.String(), want)
	}
	// With whatsapp.version in the config, that is the version in use.
	path := configtest.WriteExample(t, `version: ""`, `version: "2.3000.1999999999"`, "domain: example.org", "domain: example.org")
	stdout.Reset()
	if code := run([]string{"-c", path, "--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := "WhatsApp Web version 2.3000.1999999999 (whatsapp.version in " + path + ")"; !strings.Contains(stdout.String(), want) {
		t.Errorf("--version with whatsapp.version printed %q, want %q", stdout.String(), want)
	}
}

func TestUnknownArgument(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"frobnicate"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), `unknown command "frobnicate"`) {
		t.Errorf("stderr %q", stderr.String())
	}
}
