package devserver

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestStartPinnedOutlivesItsCaller: a child started by a goroutine whose thread then ends (as
// a goroutine that exits while locked ends it) is still alive, while one started directly
// from such a thread is killed by its Pdeathsig. The second half shows the first is not luck.
func TestStartPinnedOutlivesItsCaller(t *testing.T) {
	start := func(pinned bool) *exec.Cmd {
		cmd := exec.Command("sleep", "30")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread ends with the goroutine
			if pinned {
				_, err := StartPinned(cmd)
				errc <- err
				return
			}
			errc <- cmd.Start()
		}()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd
	}
	alive := func(cmd *exec.Cmd) bool {
		// Reap it if it died: a zombie still answers signal 0.
		var status syscall.WaitStatus
		pid, _ := syscall.Wait4(cmd.Process.Pid, &status, syscall.WNOHANG, nil)
		return pid == 0
	}
	pinned, direct := start(true), start(false)
	deadline := time.Now().Add(10 * time.Second)
	for alive(direct) {
		if time.Now().After(deadline) {
			t.Fatal("the child started from the ended thread is still alive: this kernel does not deliver Pdeathsig per thread, and the test shows nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !alive(pinned) {
		t.Fatal("the child started with StartPinned died when its caller's thread ended")
	}
}
