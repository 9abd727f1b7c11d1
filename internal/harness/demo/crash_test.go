package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/database"
	"codeberg.org/causeway/causeway/internal/archivecmd"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// TestMain lets this test binary be the benchmark's bridge process, as cmd/causeway-demo is: started
// as `BINARY --bench-bridge DIR`, it runs RunBridgeChild instead of the tests.
func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == BridgeChildArg {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := RunBridgeChild(ctx, BridgeChildOptions{Dir: os.Args[2]})
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bridge process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// resumeBound is how soon after a restart following kill -9 the bridge must capture again. Waiting
// for the dead process's writer lease to lapse took 20-30 s.
const resumeBound = 5 * time.Second

// TestCrashRestartReclaimsLease kills the benchmark's bridge process with SIGKILL, which leaves its
// archive writer lease behind, and starts a new one at once: the new process sees the holder is dead
// and captures again within resumeBound, while a second writer next to a live bridge is refused.
func TestCrashRestartReclaimsLease(t *testing.T) {
	ctx := context.Background()
	dir, err := devserver.TempDir("causeway-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	opts := BenchOptions{Archive: true, Executable: os.Args[0], Out: io.Discard}
	r, err := startRig(ctx, dir, opts, newPrinter(io.Discard), "4915554000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.close(); err != nil {
			t.Errorf("stopping the bridge: %v", err)
		}
	})
	db, err := database.Open(ctx, r.e.cfg.Database, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	contact, err := r.e.sim.NewPhone(ctx, r.e.sim.CreateAccount("4915554001", "Crash Contact"))
	if err != nil {
		t.Fatal(err)
	}
	ghost := r.e.cfg.PuppetUserID(contact.JID().User)

	if _, err := contact.SendText(ctx, r.me.JID(), "before the crash"); err != nil {
		t.Fatal(err)
	}
	room, err := r.mx.waitInvite(ctx, ghost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.mx.waitEvent(ctx, room, ghost, "the message before the crash", isText("before the crash")); err != nil {
		t.Fatal(err)
	}
	waitArchived(ctx, t, db, "before the crash", stepTimeout)
	requireRefused(ctx, t, r.e, db, r.child.cmd.Process.Pid)

	first := r.child
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	first.exited <- nil // for a later stop: it has already ended
	// Sent while no bridge runs: WhatsApp keeps it for the bridge's device until it reconnects.
	if _, err := contact.SendText(ctx, r.me.JID(), "after the crash"); err != nil {
		t.Fatal(err)
	}

	restart := time.Now()
	if r.child, err = startBridgeChild(ctx, r.e, opts); err != nil {
		r.child = nil
		t.Fatal(err)
	}
	ready := time.Since(restart)
	if _, err := r.mx.waitEvent(ctx, room, ghost, "the message sent while the bridge was down", isText("after the crash")); err != nil {
		t.Fatal(err)
	}
	waitArchived(ctx, t, db, "after the crash", stepTimeout)
	resumed := time.Since(restart)
	t.Logf("after kill -9: the new bridge process served %s after it was started, and had the next message in the archive and in Matrix after %s",
		ready.Round(time.Millisecond), resumed.Round(time.Millisecond))
	if resumed > resumeBound {
		t.Errorf("capture resumed %s after the restart, want within %s", resumed.Round(time.Millisecond), resumeBound)
	}

	// Why it was quick: the new process saw the holder had died, rather than waiting for the lease.
	logText, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	took := fmt.Sprintf("its process (pid %d) has exited", first.cmd.Process.Pid)
	if !strings.Contains(string(logText), "Taking over the archive writer lease") || !strings.Contains(string(logText), took) {
		t.Errorf("the bridge log does not say the lease was taken over because %q", took)
	}
	if strings.Contains(string(logText), "Waiting for the archive writer lease") {
		t.Errorf("the restarted bridge waited for the dead process's lease")
	}
	requireRefused(ctx, t, r.e, db, r.child.cmd.Process.Pid)
}

// waitArchived waits until the archive holds a message entry with text.
func waitArchived(ctx context.Context, t *testing.T, db *database.Database, text string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := poll(ctx, fmt.Sprintf("%q in the archive", text), func() (bool, error) {
		var n int
		err := db.QueryRow(ctx, `SELECT COUNT(*) FROM archive_entry WHERE kind='message' AND CAST(body AS TEXT) LIKE $1`, "%"+text+"%").Scan(&n)
		return n > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// requireRefused opens the archive for writing next to the running bridge, as `causeway archive
// hold add` would, and requires the refusal to name the bridge's process.
func requireRefused(ctx context.Context, t *testing.T, e *env, db *database.Database, bridgePID int) {
	t.Helper()
	a, err := archivecmd.OpenWriter(ctx, e.cfg, db, zerolog.Nop(), "a second writer", false)
	if err == nil {
		_ = a.Close()
		t.Fatalf("a second writer opened the archive while the bridge (pid %d) runs", bridgePID)
	}
	if want := fmt.Sprintf("the bridge (pid %d on ", bridgePID); !errors.Is(err, archive.ErrWriterBusy) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second writer: %v; want ErrWriterBusy naming %q", err, want)
	}
}
