//go:build goolm

package e2ee

import (
	"context"
	"fmt"
	"sync"

	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/id"
)

// outboundStore is the crypto store with the bot's outbound Megolm sessions (one per room,
// the sessions it encrypts with) kept in memory instead of in the database. mautrix's SQL
// store reads the session and unpickles it before every encryption and pickles and writes it
// back after, a write transaction of its own per relayed message: that was most of what
// encryption cost the bridge (the benchmark's --encrypted run).
//
// A session in memory ends with the process, and that is the point: a session restored from
// the database could be behind what was last sent with it (a crash between sending and
// writing), and encrypting again from an index already used makes clients reject the message
// as a replay. After a restart each room starts a new session instead, shared with the
// members' devices like any new session. What keeps history readable is untouched: the
// inbound copy of every session the bot made (the one it gives to its owner's devices on a
// key request) is written when the session is created, history.go keeps its copy of a new
// session (read from here, before its first message), and which devices got a session is in
// the database as before.
type outboundStore struct {
	*crypto.SQLCryptoStore

	mu       sync.Mutex
	sessions map[id.RoomID]*crypto.OutboundGroupSession
}

// newOutboundStore wraps store; outbound sessions stored by earlier runs are deleted, since
// they are never continued.
func newOutboundStore(ctx context.Context, store *crypto.SQLCryptoStore) (*outboundStore, error) {
	if _, err := store.DB.Exec(ctx, "DELETE FROM crypto_megolm_outbound_session WHERE account_id=$1", store.AccountID); err != nil {
		return nil, fmt.Errorf("failed to drop the outbound Megolm sessions of the last run: %w", err)
	}
	return &outboundStore{SQLCryptoStore: store, sessions: map[id.RoomID]*crypto.OutboundGroupSession{}}, nil
}

func (s *outboundStore) AddOutboundGroupSession(_ context.Context, session *crypto.OutboundGroupSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[session.RoomID] = session
	return nil
}

// UpdateOutboundGroupSession has nothing to write: the machine changed the session in place.
// (A session removed meanwhile, because a member left, stays removed.)
func (s *outboundStore) UpdateOutboundGroupSession(context.Context, *crypto.OutboundGroupSession) error {
	return nil
}

func (s *outboundStore) GetOutboundGroupSession(_ context.Context, room id.RoomID) (*crypto.OutboundGroupSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[room], nil
}

// RemoveOutboundGroupSession ends a room's session (a member left, a member's devices
// changed): the next message there starts a new one.
func (s *outboundStore) RemoveOutboundGroupSession(_ context.Context, room id.RoomID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, room)
	return nil
}
