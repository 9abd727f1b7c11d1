package msgconv

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"
)

type reactionKey struct {
	target types.MessageID
	sender types.JID
}

// memResolver is the in-memory Resolver that tests and benchmarks use.
type memResolver struct {
	users     map[types.JID]User
	jids      map[id.UserID]types.JID
	parts     map[types.MessageID][]BridgedPart
	reactions map[reactionKey]id.EventID
	refs      map[id.EventID]MessageRef
	votes     map[types.MessageID]*waE2E.PollVoteMessage
	// fail makes every lookup fail, to test error propagation.
	fail error
}

func newMemResolver() *memResolver {
	return &memResolver{
		users:     map[types.JID]User{},
		jids:      map[id.UserID]types.JID{},
		parts:     map[types.MessageID][]BridgedPart{},
		reactions: map[reactionKey]id.EventID{},
		refs:      map[id.EventID]MessageRef{},
		votes:     map[types.MessageID]*waE2E.PollVoteMessage{},
	}
}

func (m *memResolver) addUser(jid types.JID, mxid id.UserID, name string) {
	m.users[jid] = User{MXID: mxid, Name: name}
	m.jids[mxid] = jid
}

func (m *memResolver) UserByJID(_ context.Context, jid types.JID) (User, error) {
	if m.fail != nil {
		return User{}, m.fail
	}
	u, ok := m.users[jid]
	if !ok {
		return User{}, fmt.Errorf("user %s: %w", jid, ErrNotFound)
	}
	return u, nil
}

func (m *memResolver) JIDByUser(_ context.Context, mxid id.UserID) (types.JID, error) {
	if m.fail != nil {
		return types.JID{}, m.fail
	}
	j, ok := m.jids[mxid]
	if !ok {
		return types.JID{}, fmt.Errorf("user %s: %w", mxid, ErrNotFound)
	}
	return j, nil
}

func (m *memResolver) MessagePart(_ context.Context, _ types.JID, msgID types.MessageID, part PartID) (BridgedPart, error) {
	if m.fail != nil {
		return BridgedPart{}, m.fail
	}
	for _, p := range m.parts[msgID] {
		if p.PartID == part {
			return p, nil
		}
	}
	return BridgedPart{}, fmt.Errorf("message %s: %w", msgID, ErrNotFound)
}

func (m *memResolver) MessageParts(_ context.Context, _ types.JID, msgID types.MessageID) ([]BridgedPart, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	p, ok := m.parts[msgID]
	if !ok {
		return nil, fmt.Errorf("message %s: %w", msgID, ErrNotFound)
	}
	return p, nil
}

func (m *memResolver) ReactionEvent(_ context.Context, _ types.JID, target types.MessageID, sender types.JID) (id.EventID, error) {
	if m.fail != nil {
		return "", m.fail
	}
	e, ok := m.reactions[reactionKey{target, sender}]
	if !ok {
		return "", fmt.Errorf("reaction: %w", ErrNotFound)
	}
	return e, nil
}

func (m *memResolver) MessageByEvent(_ context.Context, evt id.EventID) (MessageRef, error) {
	if m.fail != nil {
		return MessageRef{}, m.fail
	}
	r, ok := m.refs[evt]
	if !ok {
		return MessageRef{}, fmt.Errorf("event %s: %w", evt, ErrNotFound)
	}
	return r, nil
}

func (m *memResolver) DecryptPollVote(_ context.Context, _ *types.MessageInfo, u *waE2E.PollUpdateMessage) (*waE2E.PollVoteMessage, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	v, ok := m.votes[u.GetPollCreationMessageKey().GetID()]
	if !ok {
		return nil, fmt.Errorf("poll secret: %w", ErrNotFound)
	}
	return v, nil
}
