package demo

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix"

	"codeberg.org/causeway/causeway/internal/harness/devserver"
	"codeberg.org/causeway/causeway/internal/harness/mxcrypto"
)

// TestHowToLook: the demo names `causeway archive verify -c` on its data directory only when
// that directory outlives it (--data); a temporary one is gone by the time the command runs.
func TestHowToLook(t *testing.T) {
	dir := t.TempDir()
	e := &env{dir: dir, cfgPath: filepath.Join(dir, configFile), hs: &devserver.Dendrite{URL: "http://127.0.0.1:8008"}}
	tests := []struct {
		name        string
		kept        bool
		encrypted   bool
		scenarioErr error
		want        []string
		absent      []string
	}{
		{"with --data", true, true, nil,
			[]string{"Every step was verified", "Data directory: " + dir + "\n", "causeway archive verify -c " + e.cfgPath,
				"portals     end-to-end encrypted"},
			[]string{"removed when the demo stops", "DIR/", "unencrypted"}},
		{"temporary", false, true, nil,
			[]string{"Data directory: " + dir + "   (removed when the demo stops)", "run the demo with --data DIR", "causeway archive verify -c DIR/config.yaml"},
			[]string{"verify -c " + e.cfgPath}},
		{"failed", false, true, errors.New("Anna's edit never arrived"),
			[]string{"The scenario FAILED: Anna's edit never arrived", "homeserver  http://127.0.0.1:8008", "password    demo-0123"},
			[]string{"Every step was verified"}},
		{"--encrypted=false", true, false, nil,
			[]string{"Every step was verified", "portals     unencrypted"},
			[]string{"end-to-end encrypted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mx := &mxUser{cli: &mautrix.Client{UserID: "@demo:localhost"}, password: "demo-0123"}
			if tt.encrypted {
				mx.crypto = &mxcrypto.Device{} // printHowToLook only asks whether there is one
			}
			var out bytes.Buffer
			printHowToLook(newPrinter(&out), e, mx, tt.kept, tt.scenarioErr)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out.String(), a) {
					t.Errorf("output has %q:\n%s", a, out.String())
				}
			}
		})
	}
}
