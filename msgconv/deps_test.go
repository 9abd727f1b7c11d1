package msgconv

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImports enforces the package's purity: no whatsmeow client, no database, no network client, no
// Matrix client or appservice, and no other package of ours. whatsmeow/types and mautrix/id pull in
// database/sql for their Scanner methods, so database/sql is checked as a direct import only.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-f", `{{join .Imports "\n"}}`+"\n---\n"+`{{join .Deps "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	direct, deps, _ := strings.Cut(string(out), "\n---\n")
	for _, imp := range strings.Fields(direct) {
		switch {
		case imp == "database/sql", strings.HasPrefix(imp, "database/sql/"), imp == "os", imp == "os/exec", imp == "net", imp == "net/http":
			t.Errorf("msgconv imports %s directly; it must not do I/O", imp)
		}
	}
	for _, dep := range strings.Fields(deps) {
		switch {
		case dep == "go.mau.fi/whatsmeow":
			t.Errorf("msgconv depends on the whatsmeow client package; use proto/... and types only")
		case dep == "maunium.net/go/mautrix", strings.HasPrefix(dep, "maunium.net/go/mautrix/appservice"),
			strings.HasPrefix(dep, "maunium.net/go/mautrix/bridgev2"):
			t.Errorf("msgconv depends on %s, a Matrix client", dep)
		case dep == "net/http", strings.HasPrefix(dep, "net/http/"):
			t.Errorf("msgconv depends on %s, a network client", dep)
		case strings.HasPrefix(dep, "codeberg.org/causeway/causeway/"):
			t.Errorf("msgconv depends on %s; it must import no other package of ours", dep)
		case dep == "github.com/lib/pq", strings.HasPrefix(dep, "modernc.org/sqlite"), strings.HasPrefix(dep, "go.mau.fi/util/dbutil"):
			t.Errorf("msgconv depends on %s, a database driver", dep)
		}
	}
}
