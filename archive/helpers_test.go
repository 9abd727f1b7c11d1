package archive

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	_ "modernc.org/sqlite"
)

// testClock is a settable clock, so retention can be tested without waiting ten years.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testEnv is an archive on SQLite in a temp dir that can be closed, tampered with and reopened.
type testEnv struct {
	t      testing.TB
	dir    string
	dbPath string
	raw    *sql.DB
	db     *dbutil.Database
	a      *Archive
	clock  *testClock
	opts   Options
	// connect opens the database; SQLite by default, PostgreSQL in the backend tests.
	connect func(t testing.TB) (*sql.DB, *dbutil.Database)
}

func openSQLite(t testing.TB, path string) (*sql.DB, *dbutil.Database) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db, err := dbutil.NewWithDB(raw, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	return raw, db
}

func newEnv(t testing.TB, mutate ...func(*Options)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, dbPath: filepath.Join(dir, "causeway.db"), clock: &testClock{t: t0}}
	e.connect = func(t testing.TB) (*sql.DB, *dbutil.Database) { return openSQLite(t, e.dbPath) }
	return e.start(mutate...)
}

// start opens the archive with test options; connect must be set.
func (e *testEnv) start(mutate ...func(*Options)) *testEnv {
	t, dir := e.t, e.dir
	e.opts = Options{
		KeyDir:   filepath.Join(dir, "keys"),
		MediaDir: filepath.Join(dir, "media"),
		Origin:   "causeway.test/archive",
		Writer:   "the test archive",
		Now:      e.clock.Now,
	}
	for _, m := range mutate {
		m(&e.opts)
	}
	e.open(false)
	t.Cleanup(e.shutdown)
	return e
}

func (e *testEnv) open(readOnly bool) {
	e.t.Helper()
	e.raw, e.db = e.connect(e.t)
	opts := e.opts
	opts.ReadOnly = readOnly
	a, err := Open(context.Background(), e.db, opts)
	if err != nil {
		e.t.Fatalf("open archive: %v", err)
	}
	e.a = a
}

// shutdown closes the archive and the database, as a process exit would.
func (e *testEnv) shutdown() {
	if e.a != nil {
		if err := e.a.Close(); err != nil {
			e.t.Errorf("close archive: %v", err)
		}
		e.a = nil
	}
	if e.raw != nil {
		_ = e.raw.Close()
		e.raw = nil
	}
}

// crash leaves the archive as kill -9 would: nothing more reaches the database, and the writer lease
// still names a process, one that has exited. Where exited processes cannot be recognised (no /proc),
// the lease has lapsed instead.
func (e *testEnv) crash() {
	e.t.Helper()
	a := e.a
	e.a = nil
	_ = e.raw.Close()
	e.raw = nil
	_ = a.Close() // stops its goroutines; every write fails on the closed database
	pid, start := exitedProcess(e.t)
	expires := time.Now().Add(LeaseTTL)
	if machineID() == "" {
		expires = time.Now().Add(-time.Second)
	}
	raw, _ := e.connect(e.t)
	defer raw.Close()
	res, err := raw.Exec(`UPDATE archive_writer SET pid=$1, pid_start=$2, expires_ts=$3`, pid, start, expires.UnixMilli())
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		e.t.Fatalf("crash: the lease is not there to leave behind (%d rows, %v)", n, err)
	}
}

// exitedProcess starts a process, notes its PID and start time, and waits for it to exit.
func exitedProcess(t testing.TB) (pid int64, start string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Until Wait reaps it, an exited child is still in /proc.
	pid = int64(cmd.Process.Pid)
	start, _ = processStart(pid)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the short-lived process failed: %v", err)
	}
	return pid, start
}

func (e *testEnv) reopen(readOnly bool) {
	e.t.Helper()
	e.shutdown()
	e.open(readOnly)
}

// tamper runs SQL on the database behind the archive's back, with the archive shut down.
func (e *testEnv) tamper(query string, args ...any) {
	e.t.Helper()
	e.shutdown()
	raw, _ := e.connect(e.t)
	defer raw.Close()
	if _, err := raw.Exec(query, args...); err != nil {
		e.t.Fatalf("tamper %q: %v", query, err)
	}
}

func (e *testEnv) append(en *Entry) Appended {
	e.t.Helper()
	app, err := e.a.Append(context.Background(), en)
	if err != nil {
		e.t.Fatalf("append %s: %v", en.Kind, err)
	}
	return app
}

func (e *testEnv) verify(opts VerifyOptions) *VerifyReport {
	e.t.Helper()
	rep, err := e.a.Verify(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("verify: %v", err)
	}
	return rep
}

const (
	alice   = "4915112345678@s.whatsapp.net"
	bob     = "4917687654321@s.whatsapp.net"
	carol   = "4916311122233@s.whatsapp.net"
	group   = "120363041234567890@g.us"
	account = "4930901820@s.whatsapp.net" // the official's bridged account
)

func textMessage(chat, sender, name, id, text string, at time.Time) *Entry {
	return &Entry{
		Kind: KindMessage, Account: account, Chat: chat, Sender: sender, SenderName: name, MessageID: id, Time: at,
		Message: &Message{Type: "text", Text: text, Proto: []byte("\x0a" + string(rune(len(text))) + text)},
	}
}

// conversation is one of each kind the relay path produces, in a plausible order.
func conversation(at time.Time) []*Entry {
	min := func(n int) time.Time { return at.Add(time.Duration(n) * time.Minute) }
	return []*Entry{
		{Kind: KindConnected, Account: account, Time: min(0)},
		{Kind: KindGroupSubject, Account: account, Chat: group, ChatName: "Procurement <team>", Sender: alice,
			SenderName: "Alice", Time: min(1), Group: &GroupChange{Action: "subject", Subject: "Procurement <team>"}},
		{Kind: KindGroupMembership, Account: account, Chat: group, Sender: alice, SenderName: "Alice", Time: min(2),
			Group: &GroupChange{Action: "add", Participants: []string{bob, carol}}},
		textMessage(group, alice, "Alice", "3EB0A1", "Tender closes Friday. <b>not bold</b> & co", min(3)),
		textMessage(group, bob, "Bob", "3EB0A2", "Understood, sending the figures now", min(4)),
		{Kind: KindEdit, Account: account, Chat: group, Sender: bob, SenderName: "Bob", MessageID: "3EB0A3", Time: min(5),
			Target: &Target{MessageID: "3EB0A2", Sender: bob}, Message: &Message{Type: "text", Text: "Understood, figures follow tomorrow"}},
		{Kind: KindReaction, Account: account, Chat: group, Sender: carol, SenderName: "Carol", MessageID: "3EB0A4", Time: min(6),
			Target: &Target{MessageID: "3EB0A1", Sender: alice}, Reaction: "👍"},
		textMessage(group, carol, "Carol", "3EB0A5", "Let's not put the number in writing", min(7)),
		{Kind: KindRevoke, Account: account, Chat: group, Sender: carol, SenderName: "Carol", MessageID: "3EB0A6", Time: min(8),
			Target: &Target{MessageID: "3EB0A5", Sender: carol}},
		{Kind: KindReceipt, Account: account, Chat: group, Sender: alice, Time: min(9),
			Receipt: &Receipt{Type: "read", MessageIDs: []string{"3EB0A2", "3EB0A5"}}},
		textMessage(bob, bob, "Bob", "3EB0B1", "Call me on my private number", min(10)),
		{Kind: KindDeleteForMe, Account: account, Chat: bob, Sender: account, Time: min(11),
			Target: &Target{MessageID: "3EB0B1", Sender: bob}},
		{Kind: KindOutboundSend, Account: account, Chat: bob, Sender: account, SenderName: "Official", MessageID: "3EB0B2", Time: min(12),
			Message:  &Message{Type: "text", Text: "Please use official channels."},
			Outbound: &Outbound{MatrixEventID: "$ev1", MatrixRoomID: "!room:gov.example", MatrixSender: "@official:gov.example", Status: "attempted"}},
		{Kind: KindOutboundResult, Account: account, Chat: bob, Sender: account, Time: min(12),
			Target: &Target{MessageID: "3EB0B2"}, Outbound: &Outbound{MatrixEventID: "$ev1", Status: "sent"}},
		{Kind: KindUndecryptable, Account: account, Chat: group, Sender: bob, MessageID: "3EB0A7", Time: min(13)},
		{Kind: KindDisconnected, Account: account, Time: min(14), Completeness: &Completeness{Reason: "stream error"}},
		{Kind: KindConnected, Account: account, Time: min(20)},
		{Kind: KindChatDelete, Account: account, Chat: bob, Sender: account, Time: min(21)},
		{Kind: KindHistorySync, Account: account, Chat: group, Time: min(22),
			Completeness: &Completeness{From: at.Add(-90 * 24 * time.Hour), To: at, Reason: "initial"}},
	}
}

func hasProblem(rep *VerifyReport, code string, idx int64) bool {
	for _, p := range rep.Problems {
		if p.Code == code && p.Index == idx {
			return true
		}
	}
	return false
}

func problemList(ps []Problem) string {
	s := ""
	for _, p := range ps {
		s += fmt.Sprintf("\n  %s", p)
	}
	return s
}
