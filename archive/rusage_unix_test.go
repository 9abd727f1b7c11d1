//go:build unix

package archive

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, so benchmarks can report CPU per entry: on a busy
// relay the archive's CPU, not its latency, is what it takes from throughput.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
