//go:build goolm

package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/internal/harness/devserver"
)

// jsClient is a Matrix user's device running matrix-js-sdk with its Rust crypto, the crypto
// Element ships (interop/js/client.mjs), driven over its stdin and stdout.
type jsClient struct {
	stdin   *os.File
	stderr  string // the client's log file, shown when the test fails
	proc    *os.Process
	exited  <-chan error
	readers sync.WaitGroup
	stopped sync.Once

	mu      sync.Mutex
	wake    chan struct{} // closed (and replaced) whenever a line arrives
	ready   *jsReady
	events  map[id.EventID]*jsEvent // the latest report of each event
	order   []id.EventID            // in the order the client first saw them
	invites []jsInvite
	replies map[int]*jsReply
	fatal   string
	gone    bool // stdout closed: the client exited
	nextID  int
}

type jsReady struct {
	DeviceID          id.DeviceID `json:"device_id"`
	Curve25519        string      `json:"curve25519"`
	CrossSigningReady bool        `json:"cross_signing_ready"`
	// CrossSigned: the user's self-signing key signed this device.
	CrossSigned bool `json:"cross_signed"`
	// RecoveryKey opens the secret storage the client set up (CW_RECOVERY=create).
	RecoveryKey string `json:"recovery_key"`
}

type jsInvite struct {
	RoomID  id.RoomID `json:"room_id"`
	Inviter id.UserID `json:"inviter"`
	IsSpace bool      `json:"is_space"`
}

type jsReply struct {
	OK      bool       `json:"ok"`
	Error   string     `json:"error"`
	EventID id.EventID `json:"event_id"`
	SHA256  string     `json:"sha256"`
}

// jsEvent is a room event as the js client shows it: decrypted (or not), with the shield it
// puts next to it.
type jsEvent struct {
	RoomID    id.RoomID      `json:"room_id"`
	EventID   id.EventID     `json:"event_id"`
	Sender    id.UserID      `json:"sender"`
	Type      string         `json:"type"`
	StateKey  *string        `json:"state_key"`
	Content   map[string]any `json:"content"`
	Redacts   id.EventID     `json:"redacts"`
	Encrypted bool           `json:"encrypted"`
	UTD       bool           `json:"utd"`
	UTDReason string         `json:"utd_reason"`
	Redacted  bool           `json:"redacted"`
	Shield    *struct {
		Colour string `json:"colour"`
		Reason string `json:"reason"`
	} `json:"shield"`
	SenderDevice *struct {
		UserID      id.UserID   `json:"user_id"`
		DeviceID    id.DeviceID `json:"device_id"`
		CrossSigned bool        `json:"cross_signed"`
		Verified    bool        `json:"verified"`
	} `json:"sender_device"`
	Media *struct {
		EncryptedFile bool   `json:"encrypted_file"`
		Size          int    `json:"size"`
		SHA256        string `json:"sha256"`
		Error         string `json:"error"`
	} `json:"media"`
}

func (e *jsEvent) body() string {
	s, _ := e.Content["body"].(string)
	return s
}

// relation is the event's m.relates_to as (rel_type or "m.in_reply_to", target).
func (e *jsEvent) relation() (string, id.EventID) {
	rel, _ := e.Content["m.relates_to"].(map[string]any)
	if rel == nil {
		return "", ""
	}
	if r, ok := rel["m.in_reply_to"].(map[string]any); ok {
		target, _ := r["event_id"].(string)
		return "m.in_reply_to", id.EventID(target)
	}
	typ, _ := rel["rel_type"].(string)
	target, _ := rel["event_id"].(string)
	return typ, id.EventID(target)
}

// jsDir is the js client's package, installed (npm ci) from its lock file when missing.
func jsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "interop", "js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: the interop test runs matrix-js-sdk with node 20 (.ci/run installs it with apt): %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "matrix-js-sdk", "package.json")); err == nil {
		return dir
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("interop/js has no node_modules and npm is not installed to run `npm ci` there (.ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir
}

// startJSClient logs a new device of user in with matrix-js-sdk, sets up cross-signing the
// way Element does on a first login, and returns once the homeserver serves the device's keys.
func startJSClient(t *testing.T, user id.UserID, password string, bot id.UserID) *jsClient {
	t.Helper()
	return startJSClientRecovery(t, user, password, bot, "")
}

// startJSClientRecovery is startJSClient with the client's CW_RECOVERY (see client.mjs):
// "create" keeps the new cross-signing keys in secret storage under a recovery key it
// reports; a recovery key verifies the new device with the keys already there.
func startJSClientRecovery(t *testing.T, user id.UserID, password string, bot id.UserID, recovery string) *jsClient {
	t.Helper()
	dir := jsDir(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "js-client.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CW_HOMESERVER="+hs.URL, "CW_USER="+string(user), "CW_PASSWORD="+password,
		"CW_BOT="+string(bot), "CW_LOG_LEVEL=info", "CW_RECOVERY="+recovery)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited, err := devserver.StartPinned(cmd)
	// The child holds its own copies now.
	_ = inR.Close()
	_ = outW.Close()
	_ = logFile.Close()
	if err != nil {
		_ = inW.Close()
		_ = outR.Close()
		t.Fatalf("starting the js client: %v", err)
	}
	c := &jsClient{stdin: inW, stderr: logPath, proc: cmd.Process, exited: exited, wake: make(chan struct{}),
		events: map[id.EventID]*jsEvent{}, replies: map[int]*jsReply{}}
	c.readers.Add(1)
	go c.read(outR)
	t.Cleanup(func() { c.stop(t) })
	c.wait(t, "the js client to log in and upload its keys", 2*time.Minute, func() bool { return c.ready != nil })
	return c
}

func (c *jsClient) read(out *os.File) {
	defer c.readers.Done()
	defer out.Close()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		c.handle(sc.Bytes())
	}
	c.mu.Lock()
	c.gone = true
	c.signal()
	c.mu.Unlock()
}

func (c *jsClient) handle(line []byte) {
	var kind struct {
		Kind  string `json:"kind"`
		ID    int    `json:"id"`
		Error string `json:"error"`
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.signal()
	if err := json.Unmarshal(line, &kind); err != nil {
		c.fatal = fmt.Sprintf("the js client wrote a line that is not JSON: %q", line)
		return
	}
	var err error
	switch kind.Kind {
	case "ready":
		c.ready = &jsReady{}
		err = json.Unmarshal(line, c.ready)
	case "invite":
		var inv jsInvite
		err = json.Unmarshal(line, &inv)
		c.invites = append(c.invites, inv)
	case "event":
		var evt jsEvent
		err = json.Unmarshal(line, &evt)
		if _, seen := c.events[evt.EventID]; !seen {
			c.order = append(c.order, evt.EventID)
		}
		c.events[evt.EventID] = &evt
	case "reply":
		var r jsReply
		err = json.Unmarshal(line, &r)
		c.replies[kind.ID] = &r
	case "fatal":
		c.fatal = kind.Error
	default:
		err = fmt.Errorf("unknown kind %q", kind.Kind)
	}
	if err != nil {
		c.fatal = fmt.Sprintf("the js client's line %q: %v", line, err)
	}
}

// signal wakes every wait; c.mu is held.
func (c *jsClient) signal() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// wait blocks until cond (called with c.mu held) holds, failing the test when the client
// dies or timeout passes.
func (c *jsClient) wait(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ok, fatal, gone, wake := c.check(cond)
		switch {
		case ok:
			return
		case fatal != "":
			t.Fatalf("waiting for %s: the js client failed: %s", what, fatal)
		case gone:
			t.Fatalf("waiting for %s: the js client exited", what)
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// check evaluates cond under c.mu (released even when cond panics).
func (c *jsClient) check(cond func() bool) (ok bool, fatal string, gone bool, wake chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cond(), c.fatal, c.gone, c.wake
}

// do runs one command and returns its reply, failing the test on an error.
func (c *jsClient) do(t *testing.T, cmd string, args map[string]any) *jsReply {
	t.Helper()
	c.mu.Lock()
	c.nextID++
	n := c.nextID
	c.mu.Unlock()
	msg := map[string]any{"id": n, "cmd": cmd}
	for k, v := range args {
		msg[k] = v
	}
	line, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("writing to the js client: %v", err)
	}
	var r *jsReply
	c.wait(t, "the js client's answer to "+cmd, 2*time.Minute, func() bool { r = c.replies[n]; return r != nil })
	if !r.OK {
		t.Fatalf("js client: %s failed: %s", cmd, r.Error)
	}
	return r
}

// waitInvite waits for an invite from inviter (spaces aside), joins the room and returns it
// once the client knows it is encrypted.
func (c *jsClient) waitInvite(t *testing.T, inviter id.UserID) id.RoomID {
	t.Helper()
	var room id.RoomID
	c.wait(t, "an invite from "+string(inviter), 90*time.Second, func() bool {
		for _, inv := range c.invites {
			if inv.Inviter == inviter && !inv.IsSpace {
				room = inv.RoomID
				return true
			}
		}
		return false
	})
	c.do(t, "join", map[string]any{"room_id": room})
	return room
}

// waitEvent waits until the client shows an event of sender in room that match accepts,
// decrypted; an encrypted event it cannot decrypt never matches.
func (c *jsClient) waitEvent(t *testing.T, room id.RoomID, sender id.UserID, what string, match func(*jsEvent) bool) *jsEvent {
	t.Helper()
	return c.waitShown(t, room, sender, what, func(e *jsEvent) bool { return !e.UTD && match(e) })
}

// waitShown waits until the client shows an event of sender in room that match accepts,
// whether it decrypted it or not.
func (c *jsClient) waitShown(t *testing.T, room id.RoomID, sender id.UserID, what string, match func(*jsEvent) bool) *jsEvent {
	t.Helper()
	var got *jsEvent
	t.Cleanup(func() {
		if got == nil && t.Failed() {
			c.logRoom(t, room)
		}
	})
	c.wait(t, fmt.Sprintf("%s from %s in the js client", what, sender), 90*time.Second, func() bool {
		for _, evID := range c.order {
			if e := c.events[evID]; e.RoomID == room && e.Sender == sender && match(e) {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

// seen returns the latest report of every event the client saw in room.
func (c *jsClient) seen(room id.RoomID) map[id.EventID]jsEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[id.EventID]jsEvent{}
	for evID, e := range c.events {
		if e.RoomID == room {
			out[evID] = *e
		}
	}
	return out
}

// logRoom logs the last events the client showed in room, for a wait that failed.
func (c *jsClient) logRoom(t *testing.T, room id.RoomID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for _, evID := range c.order {
		if e := c.events[evID]; e.RoomID == room {
			content, _ := json.Marshal(e.Content)
			lines = append(lines, fmt.Sprintf("%s %s %s utd=%v %s", e.EventID, e.Sender, e.Type, e.UTD, content))
		}
	}
	t.Logf("the js client's last events in %s:\n%s", room, strings.Join(lines[max(0, len(lines)-15):], "\n"))
}

func (c *jsClient) send(t *testing.T, room id.RoomID, typ string, content map[string]any) id.EventID {
	t.Helper()
	return c.do(t, "send", map[string]any{"room_id": room, "type": typ, "content": content}).EventID
}

// stop asks the client to exit and waits for it (once: a test may stop a device early, its
// cleanup stops it again).
func (c *jsClient) stop(t *testing.T) {
	c.stopped.Do(func() { c.stopOnce(t) })
}

func (c *jsClient) stopOnce(t *testing.T) {
	if c.stdin != nil {
		line, _ := json.Marshal(map[string]any{"id": -2, "cmd": "stop"})
		_, _ = c.stdin.Write(append(line, '\n'))
		_ = c.stdin.Close()
	}
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		t.Errorf("the js client did not stop within 15 s of being asked; killing it")
		_ = c.proc.Kill()
		<-c.exited
	}
	c.readers.Wait()
	if t.Failed() {
		if log, err := os.ReadFile(c.stderr); err == nil {
			lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
			t.Logf("the js client's last %d log lines:\n%s", min(len(lines), 80), strings.Join(lines[max(0, len(lines)-80):], "\n"))
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Logf("the js client's log: %v", err)
		}
	}
}
