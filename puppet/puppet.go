// Package puppet owns the Matrix ghost users that stand for WhatsApp contacts: their IDs,
// display names and avatars, and the intents the bridge sends as.
package puppet

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// Puppet is one contact's ghost.
type Puppet struct {
	JID types.JID
	row *database.Puppet

	mu sync.Mutex // serialises profile updates of this ghost
}

// MXID is the ghost's Matrix user ID.
func (p *Puppet) MXID() id.UserID { return p.row.MXID }

// Name is the ghost's current display name.
func (p *Puppet) Name() string { return p.row.Displayname }

// Matrix is what puppets need from the homeserver, each call acting as the ghost named.
// The bridge adapts the appservice to it; tests use a fake.
type Matrix interface {
	// EnsureRegistered creates the ghost's account on the homeserver if it has none.
	EnsureRegistered(ctx context.Context, ghost id.UserID) error
	SetDisplayName(ctx context.Context, ghost id.UserID, name string) error
	// UploadAvatar stores a profile picture in the media repository, as the ghost.
	UploadAvatar(ctx context.Context, ghost id.UserID, data []byte, mimeType string) (id.ContentURIString, error)
	// SetAvatarURL sets the ghost's avatar; an empty URI removes it.
	SetAvatarURL(ctx context.Context, ghost id.UserID, uri id.ContentURIString) error
}

// Manager creates and caches puppets.
type Manager struct {
	cfg *config.Config
	mx  Matrix
	db  *database.Database
	log zerolog.Logger

	mu       sync.Mutex
	byJID    map[types.JID]*Puppet
	creating map[types.JID]chan struct{} // closed when the creation in progress ends
}

// NewManager returns a manager; nothing is loaded until asked for.
func NewManager(cfg *config.Config, mx Matrix, db *database.Database, log zerolog.Logger) *Manager {
	return &Manager{cfg: cfg, mx: mx, db: db, log: log, byJID: map[types.JID]*Puppet{}, creating: map[types.JID]chan struct{}{}}
}

// Normalize reduces a JID to the contact it names: no device, no agent.
func Normalize(jid types.JID) types.JID {
	return jid.ToNonAD()
}

// PreferPhone names a contact by phone number when WhatsApp gave both identities: jid is
// what WhatsApp addressed (a phone-number JID or a LID, "hidden user"), alt the other
// identity it may have sent along (MessageInfo.SenderAlt, a participant's PhoneNumber). A
// contact has one ghost, named by phone number, so the same person seen through a LID in
// one group and by number in a DM stays one Matrix user. A LID without a known number stays
// a LID. The result has no device part.
func PreferPhone(jid, alt types.JID) types.JID {
	if jid.Server == types.HiddenUserServer && alt.Server == types.DefaultUserServer && alt.User != "" {
		return alt.ToNonAD()
	}
	return jid.ToNonAD()
}

// Get returns the puppet for a contact, creating and registering its ghost on first use.
func (m *Manager) Get(ctx context.Context, jid types.JID) (*Puppet, error) {
	jid = Normalize(jid)
	if jid.User == "" {
		return nil, errors.New("empty JID has no puppet")
	}
	// One creation per contact at a time: two racing ones both set the ghost's first name
	// (the number), and the slower could land after a rename from the address book.
	m.mu.Lock()
	for {
		if p, ok := m.byJID[jid]; ok {
			m.mu.Unlock()
			return p, nil
		}
		wait, busy := m.creating[jid]
		if !busy {
			break
		}
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m.mu.Lock()
	}
	done := make(chan struct{})
	m.creating[jid] = done
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.creating, jid)
		m.mu.Unlock()
		close(done)
	}()
	row, err := m.db.Puppets.Get(ctx, jid.String())
	if err != nil {
		return nil, err
	}
	if row == nil {
		row = &database.Puppet{JID: jid.String(), MXID: m.cfg.PuppetUserID(jid.User)}
	}
	p := &Puppet{JID: jid, row: row}
	if err := m.ensureRegistered(ctx, p); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.byJID[jid] = p
	m.mu.Unlock()
	return p, nil
}

// ByMXID returns the puppet behind a ghost user ID, or nil if it is not one of ours.
func (m *Manager) ByMXID(ctx context.Context, mxid id.UserID) (*Puppet, error) {
	if _, ok := m.cfg.IsPuppet(mxid); !ok {
		return nil, nil
	}
	row, err := m.db.Puppets.GetByMXID(ctx, mxid)
	if err != nil || row == nil {
		return nil, err
	}
	jid, err := types.ParseJID(row.JID)
	if err != nil {
		return nil, fmt.Errorf("puppet %s has a bad JID %q: %w", mxid, row.JID, err)
	}
	return m.Get(ctx, jid)
}

func (m *Manager) ensureRegistered(ctx context.Context, p *Puppet) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.row.Registered {
		return nil
	}
	if err := m.mx.EnsureRegistered(ctx, p.row.MXID); err != nil {
		return fmt.Errorf("failed to register ghost %s: %w", p.row.MXID, err)
	}
	if p.row.Displayname == "" {
		name := m.cfg.PuppetDisplayname(config.ContactNames{Phone: phoneOf(p.JID)})
		if err := m.mx.SetDisplayName(ctx, p.row.MXID, name); err != nil {
			return fmt.Errorf("failed to name ghost %s: %w", p.row.MXID, err)
		}
		p.row.Displayname = name
	}
	p.row.Registered = true
	return m.db.Puppets.Put(ctx, p.row)
}

func phoneOf(jid types.JID) string {
	if jid.Server == types.DefaultUserServer {
		return "+" + jid.User
	}
	return jid.User
}

// UpdateName renders the display name template from what is known about the contact and
// sets it when it changed.
func (m *Manager) UpdateName(ctx context.Context, p *Puppet, readNames func(context.Context) config.ContactNames) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The names are read under the ghost's lock: two updates racing (a new room and an
	// address-book change) must not let the one that read older names write last.
	names := readNames(ctx)
	if names.Phone == "" {
		names.Phone = phoneOf(p.JID)
	}
	name := m.cfg.PuppetDisplayname(names)
	if name == p.row.Displayname {
		return nil
	}
	if err := m.mx.SetDisplayName(ctx, p.row.MXID, name); err != nil {
		return fmt.Errorf("failed to rename ghost %s: %w", p.row.MXID, err)
	}
	m.log.Debug().Str("jid", p.JID.String()).Str("name", name).Msg("Updated ghost name")
	p.row.Displayname = name
	return m.db.Puppets.Put(ctx, p.row)
}

// AvatarFetcher downloads a profile picture; the bridge implements it with whatsmeow.
type AvatarFetcher func(ctx context.Context) (data []byte, mimeType string, err error)

// UpdateAvatar sets the ghost's avatar when WhatsApp's picture ID changed. An empty
// avatarID removes the avatar.
func (m *Manager) UpdateAvatar(ctx context.Context, p *Puppet, avatarID string, fetch AvatarFetcher) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if avatarID == p.row.AvatarID {
		return nil
	}
	var mxc id.ContentURIString
	if avatarID != "" {
		data, mimeType, err := fetch(ctx)
		if err != nil {
			return fmt.Errorf("failed to download the profile picture of %s: %w", p.JID, err)
		}
		if mxc, err = m.mx.UploadAvatar(ctx, p.row.MXID, data, mimeType); err != nil {
			return fmt.Errorf("failed to upload the profile picture of %s: %w", p.JID, err)
		}
	}
	if err := m.mx.SetAvatarURL(ctx, p.row.MXID, mxc); err != nil {
		return fmt.Errorf("failed to set the avatar of %s: %w", p.row.MXID, err)
	}
	p.row.AvatarID, p.row.AvatarMXC = avatarID, mxc
	return m.db.Puppets.Put(ctx, p.row)
}

// AvatarMXC is the ghost's current avatar.
func (p *Puppet) AvatarMXC() id.ContentURIString { return p.row.AvatarMXC }
