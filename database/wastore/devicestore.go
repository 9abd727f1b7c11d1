package wastore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// deviceStore implements every per-device store interface for one device. It is created
// unbound for a NewDevice and bound to the device's JID when the device is saved, because
// the JID is only known after pairing.
type deviceStore struct {
	c *Container

	jidLock sync.RWMutex
	jid     string

	// Serialises prekey generation within the process: two uploads at once (connect success
	// and a low-prekey notification) must not each generate a batch for the same shortfall.
	preKeyLock sync.Mutex

	// Push names arrive with nearly every message; the cache saves a read per message.
	contactLock  sync.Mutex
	contactCache map[types.JID]types.ContactInfo

	// whatsmeow asks for the PN->LID session migration on every send; once per phone
	// number per process is enough.
	migratedLock sync.Mutex
	migrated     map[string]struct{}

	// Handled events whose buffered plaintext is still to be cleared in the database (see
	// ClearBufferedEventPlaintext), and the timer that writes them if no decryption does.
	clearLock  sync.Mutex
	clears     map[[32]byte]struct{}
	clearTimer *time.Timer
	flushLock  sync.Mutex
}

var _ store.AllSessionSpecificStores = (*deviceStore)(nil)

func newDeviceStore(c *Container, jid string) *deviceStore {
	return &deviceStore{
		c:            c,
		jid:          jid,
		contactCache: make(map[types.JID]types.ContactInfo),
		migrated:     make(map[string]struct{}),
		clears:       make(map[[32]byte]struct{}),
	}
}

// bind points the store at jid ("" unbinds it). Caches describe the old device's data, so a
// change of JID drops them.
func (s *deviceStore) bind(jid string) {
	s.jidLock.Lock()
	changed := s.jid != jid
	s.jid = jid
	s.jidLock.Unlock()
	if !changed {
		return
	}
	s.contactLock.Lock()
	s.contactCache = make(map[types.JID]types.ContactInfo)
	s.contactLock.Unlock()
	s.migratedLock.Lock()
	s.migrated = make(map[string]struct{})
	s.migratedLock.Unlock()
	s.clearLock.Lock()
	s.clears = make(map[[32]byte]struct{})
	s.clearLock.Unlock()
}

// ownJID is the device JID rows are stored under.
func (s *deviceStore) ownJID() (string, error) {
	s.jidLock.RLock()
	defer s.jidLock.RUnlock()
	if s.jid == "" {
		return "", ErrDeviceIDMustBeSet
	}
	return s.jid, nil
}

// exec runs a statement scoped to this device: $1 is always the device JID.
func (s *deviceStore) exec(ctx context.Context, what, query string, args ...any) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	if _, err := s.c.db.Exec(ctx, query, append([]any{jid}, args...)...); err != nil {
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	return nil
}

// Statement parameter budgets: well under SQLite's 32766 and PostgreSQL's 65535.
const (
	maxRowsPerInsert = 250
	maxInListItems   = 500
)

// valueTuples renders rows tuples of "($1, $a, $b, ...)" with cols fresh placeholders each,
// numbered from $2: $1 is the device JID shared by every row.
func valueTuples(rows, cols int) string {
	var b strings.Builder
	next := 2
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("($1")
		for range cols {
			fmt.Fprintf(&b, ", $%d", next)
			next++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// placeholderList renders "$first, $first+1, ..." for an IN list of n items.
func placeholderList(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
}

// chunks splits items into slices of at most size elements.
func chunks[T any](items []T, size int) [][]T {
	var out [][]T
	for len(items) > size {
		out = append(out, items[:size:size])
		items = items[size:]
	}
	if len(items) > 0 {
		out = append(out, items)
	}
	return out
}

// lastWins drops earlier duplicates (by key), keeping the order of the survivors. A single
// multi-row upsert must not touch one row twice (PostgreSQL rejects that).
func lastWins[T any, K comparable](items []T, key func(T) K) []T {
	last := make(map[K]int, len(items))
	for i, item := range items {
		last[key(item)] = i
	}
	if len(last) == len(items) {
		return items
	}
	out := make([]T, 0, len(last))
	for i, item := range items {
		if last[key(item)] == i {
			out = append(out, item)
		}
	}
	return out
}
