package wastore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
)

// bufferFilter answers "might this ciphertext hash be in a device's event buffer?" from
// memory. whatsmeow asks GetBufferedEvent for every message it receives, and nearly always
// the answer is no; the query for that no cost about as much as the decryption itself.
//
// The filter holds the first 8 bytes of every buffered hash of one device: a hash whose
// prefix is absent is certainly not buffered, one whose prefix is present is looked up in the
// database as before. So the filter may say "maybe" wrongly (a hash deleted since, a
// transaction rolled back, a rare prefix collision) but never "no" wrongly, which would make
// whatsmeow decrypt a redelivered message a second time. That is why it is shared by every
// store of the device in the container (a second store's inserts must be seen) and why it is
// loaded from the table before its first use.
type bufferFilter struct {
	mu       sync.Mutex
	loaded   bool
	prefixes map[uint64]struct{}
	// added since the last load began: an insert may not have committed when the load's
	// query read the table, so a load keeps these whatever the table says.
	recent map[uint64]struct{}
}

func hashPrefix(hash [32]byte) uint64 { return binary.BigEndian.Uint64(hash[:8]) }

// filterFor returns the shared filter of the device stored under jid.
func (c *Container) filterFor(jid string) *bufferFilter {
	c.filterLock.Lock()
	defer c.filterLock.Unlock()
	f, ok := c.filters[jid]
	if !ok {
		f = &bufferFilter{}
		c.filters[jid] = f
	}
	return f
}

// mayContain reports whether hash could be buffered for the device, loading the filter from
// the database first if this process has not yet.
func (f *bufferFilter) mayContain(ctx context.Context, s *deviceStore, jid string, hash [32]byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		if err := f.loadLocked(ctx, s, jid); err != nil {
			return false, err
		}
	}
	_, ok := f.prefixes[hashPrefix(hash)]
	return ok, nil
}

// add records a hash about to be buffered. It is called before the insert, so there is no
// moment when the row exists and the filter does not know it.
func (f *bufferFilter) add(hash [32]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prefixes == nil {
		f.prefixes, f.recent = make(map[uint64]struct{}), make(map[uint64]struct{})
	}
	f.prefixes[hashPrefix(hash)] = struct{}{}
	f.recent[hashPrefix(hash)] = struct{}{}
}

// reload rebuilds the filter from the table, after old hashes were deleted, so it does not
// grow for as long as the process runs.
func (f *bufferFilter) reload(ctx context.Context, s *deviceStore, jid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loadLocked(ctx, s, jid)
}

func (f *bufferFilter) loadLocked(ctx context.Context, s *deviceStore, jid string) error {
	rows, err := s.c.db.Query(ctx, "SELECT ciphertext_hash FROM wastore_event_buffer WHERE device_jid=$1", jid)
	if err != nil {
		return fmt.Errorf("failed to load the buffered event hashes: %w", err)
	}
	defer rows.Close()
	prefixes := make(map[uint64]struct{}, len(f.prefixes))
	for p := range f.recent {
		prefixes[p] = struct{}{}
	}
	for rows.Next() {
		var hash []byte
		if err := rows.Scan(&hash); err != nil {
			return fmt.Errorf("failed to scan a buffered event hash: %w", err)
		}
		if len(hash) != 32 {
			return fmt.Errorf("%w: buffered event hash of %d bytes", ErrCorruptRow, len(hash))
		}
		prefixes[hashPrefix([32]byte(hash))] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to load the buffered event hashes: %w", err)
	}
	f.prefixes, f.recent, f.loaded = prefixes, make(map[uint64]struct{}), true
	return nil
}
