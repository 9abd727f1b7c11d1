package archive

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// machineID scopes PIDs and start times: the boot (a reboot starts PIDs and clock ticks afresh) and the
// PID namespace (two containers on one kernel share the boot id, and each may have a PID 1). Empty when
// either cannot be read.
func machineID() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil || strings.TrimSpace(string(boot)) == "" {
		return ""
	}
	return "boot " + strings.TrimSpace(string(boot)) + " " + ns
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
