package puppet

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database/dbtest"
)

// fakeMatrix records what the puppets asked of the homeserver.
type fakeMatrix struct {
	mu         sync.Mutex
	registered map[id.UserID]int
	names      map[id.UserID][]string
	avatars    map[id.UserID][]id.ContentURIString
	// slow widens the window in which two creations of one ghost could overlap.
	slow time.Duration
}

func newFakeMatrix() *fakeMatrix {
	return &fakeMatrix{registered: map[id.UserID]int{}, names: map[id.UserID][]string{}, avatars: map[id.UserID][]id.ContentURIString{}}
}

func (f *fakeMatrix) EnsureRegistered(_ context.Context, ghost id.UserID) error {
	time.Sleep(f.slow)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered[ghost]++
	return nil
}

func (f *fakeMatrix) SetDisplayName(_ context.Context, ghost id.UserID, name string) error {
	time.Sleep(f.slow)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[ghost] = append(f.names[ghost], name)
	return nil
}

func (f *fakeMatrix) UploadAvatar(_ context.Context, ghost id.UserID, data []byte, _ string) (id.ContentURIString, error) {
	return id.ContentURIString("mxc://test/" + string(data)), nil
}

func (f *fakeMatrix) SetAvatarURL(_ context.Context, ghost id.UserID, uri id.ContentURIString) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.avatars[ghost] = append(f.avatars[ghost], uri)
	return nil
}

func (f *fakeMatrix) namesOf(ghost id.UserID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.names[ghost]...)
}

var (
	bobPN  = types.NewJID("4915550002", types.DefaultUserServer)
	bobLID = types.NewJID("123456789012345", types.HiddenUserServer)
)

// testConfig is the example configuration, validated (which compiles its templates).
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Homeserver.Address, cfg.Homeserver.Domain = "http://127.0.0.1:8008", "test"
	cfg.Permissions = config.Permissions{"test": "user"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func names(n config.ContactNames) func(context.Context) config.ContactNames {
	return func(context.Context) config.ContactNames { return n }
}

func TestNameChanges(t *testing.T) {
	ctx := context.Background()
	cfg, db, mx := testConfig(t), dbtest.InMemory(t), newFakeMatrix()
	m := NewManager(cfg, mx, db, zerolog.Nop())
	p, err := m.Get(ctx, bobPN)
	if err != nil {
		t.Fatal(err)
	}
	ghost := p.MXID()
	steps := []struct {
		name string
		set  config.ContactNames // nil-able by zero value: only the phone number is known
		want string
		// renamed says whether the homeserver is asked to rename the ghost.
		renamed bool
	}{
		{"push name only", config.ContactNames{PushName: "Bobby"}, "Bobby (WhatsApp)", true},
		{"same names again", config.ContactNames{PushName: "Bobby"}, "Bobby (WhatsApp)", false},
		{"address book wins over the push name", config.ContactNames{FullName: "Bob Builder", PushName: "Bobby"}, "Bob Builder (WhatsApp)", true},
		{"address-book entry removed", config.ContactNames{}, "+4915550002 (WhatsApp)", true},
	}
	for _, step := range steps {
		before := len(mx.namesOf(ghost))
		if err := m.UpdateName(ctx, p, names(step.set)); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if p.Name() != step.want {
			t.Fatalf("%s: name %q, want %q", step.name, p.Name(), step.want)
		}
		if renamed := len(mx.namesOf(ghost)) > before; renamed != step.renamed {
			t.Fatalf("%s: homeserver asked to rename: %v, want %v", step.name, renamed, step.renamed)
		}
	}
	// The name is stored: a restarted bridge neither renames nor re-registers the ghost.
	fresh := newFakeMatrix()
	p2, err := NewManager(cfg, fresh, db, zerolog.Nop()).Get(ctx, bobPN)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Name() != "+4915550002 (WhatsApp)" || len(fresh.registered) != 0 || len(fresh.names) != 0 {
		t.Fatalf("after a restart: name %q, registrations %v, renames %v", p2.Name(), fresh.registered, fresh.names)
	}
	// The first name a new ghost gets is its number.
	if got := mx.namesOf(ghost)[0]; got != "+4915550002 (WhatsApp)" {
		t.Fatalf("first name %q, want the number", got)
	}
}

func TestConcurrentCreation(t *testing.T) {
	ctx := context.Background()
	mx := newFakeMatrix()
	mx.slow = 5 * time.Millisecond
	m := NewManager(testConfig(t), mx, dbtest.InMemory(t), zerolog.Nop())
	const n = 20
	got := make([]*Puppet, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half with a device part: the same contact.
			jid := bobPN
			if i%2 == 1 {
				jid.Device = uint16(i)
			}
			p, err := m.Get(ctx, jid)
			if err != nil {
				errs <- err
				return
			}
			got[i] = p
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, p := range got {
		if p != got[0] {
			t.Fatalf("creation %d returned another puppet", i)
		}
	}
	ghost := got[0].MXID()
	if mx.registered[ghost] != 1 || len(mx.namesOf(ghost)) != 1 {
		t.Fatalf("%d concurrent creations registered the ghost %d times and named it %d times, want once each",
			n, mx.registered[ghost], len(mx.namesOf(ghost)))
	}
}

func TestIdentities(t *testing.T) {
	tests := []struct {
		name     string
		jid, alt types.JID
		want     types.JID
	}{
		{"phone number", bobPN, types.EmptyJID, bobPN},
		{"phone number with a device", types.NewADJID(bobPN.User, 0, 3), types.EmptyJID, bobPN},
		{"LID with its phone number", bobLID, bobPN, bobPN},
		{"LID with a device and its phone number's device", types.JID{User: bobLID.User, Device: 2, Server: types.HiddenUserServer}, types.NewADJID(bobPN.User, 0, 2), bobPN},
		{"LID without a phone number", bobLID, types.EmptyJID, bobLID},
		{"LID whose alt is another LID", bobLID, types.NewJID("999", types.HiddenUserServer), bobLID},
		{"phone number with a LID alt", bobPN, bobLID, bobPN},
		{"group", types.NewJID("1203630", types.GroupServer), bobPN, types.NewJID("1203630", types.GroupServer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PreferPhone(tt.jid, tt.alt); got != tt.want {
				t.Fatalf("PreferPhone(%s, %s) = %s, want %s", tt.jid, tt.alt, got, tt.want)
			}
		})
	}

	// A LID without a known number is a ghost of its own; by MXID each ghost is found again.
	ctx := context.Background()
	cfg := testConfig(t)
	m := NewManager(cfg, newFakeMatrix(), dbtest.InMemory(t), zerolog.Nop())
	byPN, err := m.Get(ctx, bobPN)
	if err != nil {
		t.Fatal(err)
	}
	byLID, err := m.Get(ctx, bobLID)
	if err != nil {
		t.Fatal(err)
	}
	if byPN.MXID() == byLID.MXID() || byPN.MXID() != cfg.PuppetUserID(bobPN.User) {
		t.Fatalf("ghosts %s (number) and %s (LID)", byPN.MXID(), byLID.MXID())
	}
	for _, p := range []*Puppet{byPN, byLID} {
		found, err := m.ByMXID(ctx, p.MXID())
		if err != nil || found != p {
			t.Fatalf("ByMXID(%s) = %v, %v; want the puppet of %s", p.MXID(), found, err, p.JID)
		}
	}
	for _, other := range []id.UserID{"@alice:" + id.UserID(cfg.Homeserver.Domain), cfg.PuppetUserID("4900000000")} {
		if found, err := m.ByMXID(ctx, other); err != nil || found != nil {
			t.Fatalf("ByMXID(%s) = %v, %v; want nothing", other, found, err)
		}
	}
	if _, err := m.Get(ctx, types.EmptyJID); err == nil {
		t.Fatal("the empty JID got a puppet")
	}
}
