package devserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary a child that starts a cluster, prints its postmaster's PID
// and data directory, and waits to be killed (TestMain).
const childEnv = "CAUSEWAY_DEVSERVER_PG_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(postgresChild())
	}
	os.Exit(m.Run())
}

func postgresChild() int {
	pg, err := StartPostgres(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %s\n", pg.postmaster.Process.Pid, pg.dir)
	time.Sleep(5 * time.Minute) // the parent kills us long before
	_ = pg.Stop()
	return 1
}

// TestPostgresDiesWithTestBinary: kill -9 of a test binary (as go test's -timeout does) takes
// its PostgreSQL cluster with it, as it does its Dendrite.
func TestPostgresDiesWithTestBinary(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1")
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the child started no cluster: %v", err)
	}
	fields := strings.Fields(line)
	if len(fields) != 2 {
		t.Fatalf("child said %q", line)
	}
	pid, _ := strconv.Atoi(fields[0])
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL); _ = os.RemoveAll(fields[1]) })
	if !running(pid) {
		t.Fatalf("postmaster %d is not running before the kill", pid)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still runs 15 s after its test binary was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running says whether pid is a live process: gone, or a zombie nobody has reaped yet (in a
// container the reaper may be slow or absent), counts as dead.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
