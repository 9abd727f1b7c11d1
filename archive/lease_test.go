package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLeaseStaleReason(t *testing.T) {
	now := time.Now()
	me := process{host: "records", machine: "records boot b1", pidNS: "pid:[1]", pid: 100, start: "5000", lock: "dev 8 ino 42"}
	running := map[int64]string{100: "5000", 200: "6000", 300: ""} // 300: alive, start not readable
	startOf := func(pid int64) (string, bool) {
		s, ok := running[pid]
		return s, ok
	}
	type holder struct {
		machine, pidNS string
		pid            int64
		start, lock    string
		expires        time.Duration
	}
	tests := []struct {
		name     string
		h        holder
		lockFree bool // this process holds its writer lock
		stale    string
	}{
		{"another host, renewed", holder{"other boot b9", "pid:[1]", 200, "6000", "dev 8 ino 42", time.Minute}, true, ""},
		{"another host, lapsed", holder{"other boot b9", "pid:[1]", 200, "6000", "", -time.Second}, false, "it lapsed"},
		{"same lock file, now free", holder{me.machine, "pid:[7]", 1, "10", me.lock, time.Minute}, true, "its writer lock is free"},
		{"same lock file, held", holder{me.machine, "pid:[7]", 400, "10", me.lock, time.Minute}, false, ""},
		{"this PID namespace, running", holder{me.machine, me.pidNS, 200, "6000", "", time.Minute}, true, ""},
		{"this PID namespace, exited", holder{me.machine, me.pidNS, 400, "7000", "", time.Minute}, true, "pid 400) has exited"},
		{"this PID namespace, PID reused", holder{me.machine, me.pidNS, 200, "5999", "", time.Minute}, true, "pid 200 is now another process"},
		{"this PID namespace, start not readable", holder{me.machine, me.pidNS, 300, "7000", "", time.Minute}, true, ""},
		{"this process, another archive", holder{me.machine, me.pidNS, 100, "5000", "", time.Minute}, true, ""},
		{"another PID namespace, another lock file", holder{me.machine, "pid:[7]", 400, "7000", "dev 9 ino 1", time.Minute}, true, ""},
		// Another boot of a host with this name, or another machine that shares it: only expiry tells.
		{"another boot", holder{"records boot b0", me.pidNS, 400, "7000", me.lock, time.Minute}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lease{purpose: "the bridge", expires: now.Add(tt.h.expires),
				holder: process{machine: tt.h.machine, pidNS: tt.h.pidNS, pid: tt.h.pid, start: tt.h.start, lock: tt.h.lock}}
			got := l.staleReason(now, me, tt.lockFree, startOf)
			if (tt.stale == "") != (got == "") || !strings.Contains(got, tt.stale) {
				t.Errorf("staleReason = %q, want %q", got, tt.stale)
			}
		})
	}
	t.Run("no machine identity here", func(t *testing.T) {
		l := &lease{expires: now.Add(time.Minute), holder: process{pid: 400, start: "7000"}}
		if got := l.staleReason(now, process{host: "records", pid: 100}, true, startOf); got != "" {
			t.Errorf("staleReason = %q, want the lease waited out", got)
		}
	})
}

func TestParseStatStart(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n"
	tests := []struct {
		stat, want string
		ok         bool
	}{
		{"123 (causeway)" + tail, "424242", true},
		{"123 (a) b (c d)" + tail, "424242", true}, // a command name may hold ") ("
		{"123 (causeway) S 1 2", "", false},
		{"no parenthesis", "", false},
	}
	for _, tt := range tests {
		if got, ok := parseStatStart(tt.stat); got != tt.want || ok != tt.ok {
			t.Errorf("parseStatStart(%q) = %q, %v; want %q, %v", tt.stat, got, ok, tt.want, tt.ok)
		}
	}
	if runtime.GOOS == "linux" {
		if start, alive := processStart(int64(os.Getpid())); !alive || start == "" {
			t.Errorf("this process: start %q, alive %v", start, alive)
		}
		if me := thisProcess(""); me.machine == "" || me.pidNS == "" {
			t.Errorf("no machine identity on Linux: %+v", me)
		}
	}
}

// leaseBackends are the databases the lease is tried on.
var leaseBackends = []struct {
	name string
	env  func(t *testing.T, mutate ...func(*Options)) *testEnv
}{
	{"sqlite", func(t *testing.T, m ...func(*Options)) *testEnv { return newEnv(t, m...) }},
	{"postgres", newPostgresEnv},
}

// openWriter opens another archive on env's database, over its own connection, as another process
// would; both are closed when the test ends.
func openWriter(ctx context.Context, t *testing.T, env *testEnv, writer string, wait bool) (*Archive, error) {
	t.Helper()
	raw, db := env.connect(t)
	t.Cleanup(func() { _ = raw.Close() })
	opts := env.opts
	opts.Writer, opts.WaitForWriter = writer, wait
	a, err := Open(ctx, db, opts)
	if err == nil {
		t.Cleanup(func() { _ = a.Close() })
	}
	return a, err
}

// storedLease reads the lease row; nil when there is none.
func storedLease(t *testing.T, env *testEnv) *lease {
	t.Helper()
	raw, db := env.connect(t)
	defer raw.Close()
	l, err := (&Archive{db: db}).readLease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// plantLease stores l as the lease, as a process that took it would have.
func plantLease(t *testing.T, env *testEnv, l *lease) {
	t.Helper()
	raw, db := env.connect(t)
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM archive_writer`); err != nil {
		t.Fatal(err)
	}
	l.token, l.taken = "planted", time.Now().Add(-time.Minute)
	if won, err := (&Archive{db: db}).swapLease(context.Background(), nil, l); err != nil || !won {
		t.Fatalf("plant the lease: %v %v", won, err)
	}
}

// lockID identifies env's writer lock file.
func lockID(t *testing.T, env *testEnv) string {
	t.Helper()
	l, err := openWriterLock(env.opts.KeyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	return l.id
}

// sleeper is a live process on this machine that is not this one.
func sleeper(t *testing.T) (pid int64, start string) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid = int64(cmd.Process.Pid)
	start, _ = processStart(pid)
	return pid, start
}

func TestWriterLease(t *testing.T) {
	ctx := context.Background()
	me := thisProcess("")
	for _, b := range leaseBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("taken by Open, released by Close", func(t *testing.T) {
				env := b.env(t)
				l := storedLease(t, env)
				if l == nil || l.holder.pid != me.pid || l.holder.start != me.start || l.holder.machine != me.machine ||
					l.holder.pidNS != me.pidNS || l.holder.lock != lockID(t, env) || l.purpose != "the test archive" || time.Until(l.expires) <= 0 {
					t.Fatalf("lease after Open: %+v, want this process's, renewed", l)
				}
				env.shutdown()
				if l := storedLease(t, env); l != nil {
					t.Fatalf("lease after Close: %+v", l)
				}
				if _, err := openWriter(ctx, t, env, "the next writer", false); err != nil {
					t.Fatalf("open after Close: %v", err)
				}
			})

			t.Run("a live holder is refused", func(t *testing.T) {
				env := b.env(t)
				// Another archive in this process, which is what a second process on the same
				// database looks like to the database.
				_, err := openWriter(ctx, t, env, "causeway archive export", false)
				want := fmt.Sprintf("open for writing: the test archive (pid %d on %s, since ", me.pid, me.host)
				if !errors.Is(err, ErrWriterBusy) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "when its lease lapses: it was renewed until") {
					t.Fatalf("second writer: %v; want ErrWriterBusy naming %q", err, want)
				}
				waitCtx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
				defer cancel()
				if _, err := openWriter(waitCtx, t, env, "a patient writer", true); !errors.Is(err, ErrWriterBusy) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("waiting writer whose wait ends: %v", err)
				}
				env.shutdown()

				pid, start := sleeper(t)
				holders := []struct {
					name string
					l    *lease
					// lock: the holder holds the writer lock (the lease names it), as a live writer in
					// another container with the same key directory does; only the lock shows it alive.
					lock bool
				}{
					{"a running process on this machine", &lease{purpose: "the bridge",
						holder: process{host: me.host, machine: me.machine, pidNS: me.pidNS, pid: pid, start: start}}, false},
					{"a holder of the writer lock in another PID namespace", &lease{purpose: "the bridge",
						holder: process{host: me.host, machine: me.machine, pidNS: "pid:[1]", pid: 1, start: "1"}}, true},
					{"a renewed lease on another host", &lease{purpose: "the bridge",
						holder: process{host: "records-host", machine: "records-host boot b", pidNS: "pid:[1]", pid: 4242, start: "1"}}, false},
				}
				for _, h := range holders {
					t.Run(h.name, func(t *testing.T) {
						if h.lock {
							held, err := openWriterLock(env.opts.KeyDir)
							if err != nil || !held.tryLock() {
								t.Fatalf("hold the writer lock: %v", err)
							}
							defer held.close()
							h.l.holder.lock = held.id
						}
						h.l.expires = time.Now().Add(time.Minute)
						plantLease(t, env, h.l)
						_, err := openWriter(ctx, t, env, "causeway archive hold", false)
						if !errors.Is(err, ErrWriterBusy) || !strings.Contains(err.Error(), fmt.Sprintf("the bridge (pid %d on %s", h.l.holder.pid, h.l.holder.host)) {
							t.Fatalf("open: %v; want ErrWriterBusy naming the holder", err)
						}
					})
				}
			})

			t.Run("a waiting writer takes it when the holder closes", func(t *testing.T) {
				env := b.env(t)
				got := make(chan error, 1)
				go func() {
					_, err := openWriter(ctx, t, env, "the next bridge", true)
					got <- err
				}()
				// The waiter's first look finds the holder; give it that look before closing.
				time.Sleep(200 * time.Millisecond)
				env.shutdown()
				if err := <-got; err != nil {
					t.Fatalf("waiting writer: %v", err)
				}
				if l := storedLease(t, env); l == nil || l.purpose != "the next bridge" {
					t.Fatalf("lease: %+v", l)
				}
			})

			pid, start := sleeper(t)
			reclaims := []struct {
				name  string
				leave func(env *testEnv)
			}{
				// kill -9 on this machine: the lease is still fresh, its process gone.
				{"a dead holder on this machine, at once", func(env *testEnv) { env.crash() }},
				{"a holder whose PID another process now has", func(env *testEnv) {
					env.shutdown()
					plantLease(t, env, &lease{purpose: "the bridge", expires: time.Now().Add(time.Minute),
						holder: process{host: me.host, machine: me.machine, pidNS: me.pidNS, pid: pid, start: start + "0"}})
				}},
				// A container restarted after a crash: a new PID namespace, the same key directory.
				{"a dead holder in another PID namespace whose writer lock is free", func(env *testEnv) {
					env.shutdown()
					plantLease(t, env, &lease{purpose: "the bridge", expires: time.Now().Add(time.Minute),
						holder: process{host: me.host, machine: me.machine, pidNS: "pid:[1]", pid: 1, start: "1", lock: lockID(t, env)}})
				}},
				{"a lapsed holder on another host", func(env *testEnv) {
					env.shutdown()
					plantLease(t, env, &lease{purpose: "the bridge", expires: time.Now().Add(-time.Second),
						holder: process{host: "records-host", machine: "records-host boot b", pidNS: "pid:[1]", pid: 4242, start: "1"}})
				}},
			}
			for _, tt := range reclaims {
				t.Run("reclaims "+tt.name, func(t *testing.T) {
					env := b.env(t)
					tt.leave(env)
					// Not waiting: the lease must be free now, not in LeaseTTL.
					if _, err := openWriter(ctx, t, env, "the restarted bridge", false); err != nil {
						t.Fatalf("open: %v", err)
					}
					if l := storedLease(t, env); l == nil || l.purpose != "the restarted bridge" || l.holder.pid != me.pid {
						t.Fatalf("lease: %+v", l)
					}
				})
			}
		})
	}
}
