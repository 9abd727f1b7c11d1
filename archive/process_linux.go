package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// machineID names this kernel's boot: a reboot starts PIDs and clock ticks afresh, and every container
// on one kernel shares it. Empty when it cannot be read.
func machineID() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil || strings.TrimSpace(string(boot)) == "" {
		return ""
	}
	return "boot " + strings.TrimSpace(string(boot))
}

// pidNamespace scopes PIDs: two containers on one kernel may each have a PID 1.
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// processStart tells whether pid runs and, when /proc shows it, its start time. /proc alone would not do:
// mounted with hidepid it hides other users' processes, which must not be taken for dead ones, so a PID
// /proc does not show is asked about with signal 0 (EPERM: it runs, as someone else).
func processStart(pid int64) (start string, alive bool) {
	if pid <= 0 {
		return "", false
	}
	if data, err := os.ReadFile("/proc/" + strconv.FormatInt(pid, 10) + "/stat"); err == nil {
		if start, ok := parseStatStart(string(data)); ok {
			return start, true
		}
	}
	err := syscall.Kill(int(pid), 0)
	return "", err == nil || errors.Is(err, syscall.EPERM)
}

// writerLock is an exclusive flock on a file next to the signing key, held by the writer while its
// archive is open. The kernel drops it when the process dies, however it dies, which a PID cannot show
// across PID namespaces: a bridge container restarted after a crash has a new one, but the same key
// directory on its volume.
type writerLock struct {
	f    *os.File
	id   string // device and inode: which file, as the lease records it
	path string
	held bool
}

const writerLockFile = "archive-writer.lock"

func openWriterLock(dir string) (*writerLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("writer lock: %w", err)
	}
	path := filepath.Join(dir, writerLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writer lock: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("writer lock: %w", err)
	}
	return &writerLock{f: f, path: path, id: fmt.Sprintf("dev %d ino %d", st.Dev, st.Ino)}, nil
}

// tryLock takes the lock unless another open of the file holds it, in this process or another.
func (l *writerLock) tryLock() bool {
	if !l.held {
		l.held = syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	}
	return l.held
}

func (l *writerLock) close() error { return l.f.Close() }
