package bridge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/archive"
	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/config"
)

// fakeClock is a bridge.Clock that moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	changed chan struct{}
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock on and fires every timer that has come due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// waitTimer waits until something waits for the clock to reach at least d from now, so that an
// Advance cannot come before the timer it is meant to fire.
func (c *fakeClock) waitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		for _, w := range c.waiters {
			if !w.at.Before(c.now.Add(d)) {
				c.mu.Unlock()
				return
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("nothing waits for the clock to pass %s", d)
		}
	}
}

// provisionStatus reads GET /_causeway/provision/v1/status.
func provisionStatus(t *testing.T, cfg *config.Config) *bridge.StatusReport {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, cfg.Appservice.Address+bridge.StatusPath, nil)
	req.Header.Set("Authorization", "Bearer "+cfg.Appservice.ASToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status endpoint: HTTP %d", resp.StatusCode)
	}
	var rep bridge.StatusReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

func loginStatus(rep *bridge.StatusReport, user id.UserID) *bridge.LoginStatus {
	for i := range rep.Logins {
		if rep.Logins[i].User == string(user) {
			return &rep.Logins[i]
		}
	}
	return nil
}

// waitLoginState polls the status endpoint until the user's login matches.
func waitLoginState(t *testing.T, cfg *config.Config, user id.UserID, what string, match func(*bridge.LoginStatus) bool) *bridge.LoginStatus {
	t.Helper()
	return waitLoginStateWithin(t, cfg, user, what, 2*time.Minute, match)
}

func waitLoginStateWithin(t *testing.T, cfg *config.Config, user id.UserID, what string, within time.Duration, match func(*bridge.LoginStatus) bool) *bridge.LoginStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	var last *bridge.LoginStatus
	for time.Now().Before(deadline) {
		last = loginStatus(provisionStatus(t, cfg), user)
		if last != nil && match(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: login of %s never matched within %s; last status %+v", what, user, within, last)
	return nil
}

// capturing is a login that is connected with its offline queue drained: no gap open.
func capturing(ls *bridge.LoginStatus) bool {
	return ls.State == "connected" && !ls.GapOpen
}

// accountGaps are the gaps of one account in [from, to) (to zero: now).
func accountGaps(t *testing.T, br *bridge.Bridge, account id.UserID, from, to time.Time) []archive.Gap {
	t.Helper()
	gaps, err := br.Archive().Gaps(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	var out []archive.Gap
	for _, g := range gaps {
		if g.Account == string(account) {
			out = append(out, g)
		}
	}
	return out
}

// gapSaying returns the gap whose detail mentions want, or nil.
func gapSaying(gaps []archive.Gap, want string) *archive.Gap {
	for i := range gaps {
		if strings.Contains(gaps[i].Detail, want) {
			return &gaps[i]
		}
	}
	return nil
}

// botGaps asks the bot `archive gaps FROM TO` in the management room and waits for its answer, which
// must list a gap mentioning want.
func botGaps(t *testing.T, u *waUser, bot id.UserID, from, to time.Time, want string) string {
	t.Helper()
	cmd := "archive gaps " + from.UTC().Truncate(time.Second).Format(time.RFC3339) + " " +
		to.UTC().Truncate(time.Second).Add(time.Second).Format(time.RFC3339)
	// The answer quotes the command's window, which tells it apart from earlier answers.
	window := from.UTC().Truncate(time.Second).Format(time.RFC3339)
	answer := waitForReply(t, u.mx, u.mgmt, bot, send(t, u.mx, u.mgmt, cmd), "from "+window)
	if !strings.Contains(answer, want) || strings.Contains(answer, "No gaps") {
		t.Errorf("the bot's archive gaps answer lists no gap mentioning %q: %q", want, answer)
	}
	return answer
}

// joinAdminRoom waits for the bridge to create its admin room and joins it as admin.
func joinAdminRoom(t *testing.T, br *bridge.Bridge, admin *mautrix.Client) id.RoomID {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if room := br.AdminRoom(ctx); room != "" {
			if _, err := admin.JoinRoomByID(ctx, room); err == nil {
				return room
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the bridge never made an admin room the admin could join")
	return ""
}
