package devserver

import (
	"os/exec"
	"runtime"
)

// StartPinned starts cmd, which should carry Pdeathsig so that it dies with the test binary,
// and reports its end on the returned channel. Pdeathsig fires when the *thread* that started
// the child exits, not the process, and Go ends a thread whenever a goroutine exits while locked
// to it: a child started from an ordinary thread is killed the day some other goroutine locks
// that thread and exits (a restarted Dendrite's did, and the benchmark's bridge process died
// with it). So the child is started and waited for on a thread of its own that lives exactly
// as long as the child.
func StartPinned(cmd *exec.Cmd) (exited <-chan error, err error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine, after the child
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
