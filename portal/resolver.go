package portal

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/msgconv"
)

// resolver answers msgconv's lookups from the puppets and this portal's message rows. It
// is only used on the portal's queue goroutine, so lookups of messages first commit what
// the queue relayed and has not recorded yet (settle).
type resolver struct {
	p  *Portal
	wa WhatsApp // nil while the login is disconnected
}

func (p *Portal) resolver(wa WhatsApp) *resolver { return &resolver{p: p, wa: wa} }

var _ msgconv.Resolver = (*resolver)(nil)

func (r *resolver) UserByJID(ctx context.Context, jid types.JID) (msgconv.User, error) {
	if r.isMe(jid) {
		// The logged-in account is the Matrix user themself, not a ghost: mentions of them
		// must ping them.
		localpart, _, _ := r.p.row.Receiver.Parse()
		return msgconv.User{MXID: r.p.row.Receiver, Name: localpart}, nil
	}
	if jid.Server == types.HiddenUserServer {
		// A LID we cannot map would mint a second ghost for a known contact; the caller
		// falls back to plain text instead.
		return msgconv.User{}, fmt.Errorf("no phone number known for %s: %w", jid, msgconv.ErrNotFound)
	}
	g, err := r.p.m.ghosts.Get(ctx, jid)
	if err != nil {
		return msgconv.User{}, err
	}
	return msgconv.User{MXID: g.MXID, Name: g.Name}, nil
}

func (r *resolver) JIDByUser(ctx context.Context, mxid id.UserID) (types.JID, error) {
	if mxid == r.p.row.Receiver && r.wa != nil {
		return r.wa.OwnJID(), nil
	}
	g, ok, err := r.p.m.ghosts.ByMXID(ctx, mxid)
	if err != nil {
		return types.EmptyJID, err
	}
	if !ok {
		return types.EmptyJID, fmt.Errorf("%s is not a WhatsApp user: %w", mxid, msgconv.ErrNotFound)
	}
	return g.JID, nil
}

func (r *resolver) MessagePart(ctx context.Context, chat types.JID, msgID types.MessageID, part msgconv.PartID) (msgconv.BridgedPart, error) {
	if err := r.p.settle(ctx); err != nil {
		return msgconv.BridgedPart{}, err
	}
	m, err := r.p.m.deps.DB.Messages.GetPart(ctx, r.p.row.PortalKey, msgID, string(part))
	if err != nil {
		return msgconv.BridgedPart{}, err
	} else if m == nil {
		return msgconv.BridgedPart{}, fmt.Errorf("message %s: %w", msgID, msgconv.ErrNotFound)
	}
	sender, _ := types.ParseJID(m.SenderJID)
	return msgconv.BridgedPart{EventID: m.MXID, PartID: msgconv.PartID(m.PartID), Sender: sender}, nil
}

func (r *resolver) MessageParts(ctx context.Context, chat types.JID, msgID types.MessageID) ([]msgconv.BridgedPart, error) {
	if err := r.p.settle(ctx); err != nil {
		return nil, err
	}
	rows, err := r.p.m.deps.DB.Messages.GetParts(ctx, r.p.row.PortalKey, msgID)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("message %s: %w", msgID, msgconv.ErrNotFound)
	}
	out := make([]msgconv.BridgedPart, 0, len(rows))
	for _, m := range rows {
		sender, _ := types.ParseJID(m.SenderJID)
		out = append(out, msgconv.BridgedPart{EventID: m.MXID, PartID: msgconv.PartID(m.PartID), Sender: sender})
	}
	return out, nil
}

func (r *resolver) ReactionEvent(ctx context.Context, chat types.JID, target types.MessageID, sender types.JID) (id.EventID, error) {
	if err := r.p.settle(ctx); err != nil {
		return "", err
	}
	re, err := r.p.m.deps.DB.Reactions.Get(ctx, r.p.row.PortalKey, target, sender.ToNonAD().String())
	if err != nil {
		return "", err
	} else if re == nil {
		return "", fmt.Errorf("reaction to %s: %w", target, msgconv.ErrNotFound)
	}
	return re.MXID, nil
}

func (r *resolver) MessageByEvent(ctx context.Context, evt id.EventID) (msgconv.MessageRef, error) {
	if err := r.p.settle(ctx); err != nil {
		return msgconv.MessageRef{}, err
	}
	db := r.p.m.deps.DB
	if re, err := db.Reactions.GetByMXID(ctx, evt); err != nil {
		return msgconv.MessageRef{}, err
	} else if re != nil {
		sender, _ := types.ParseJID(re.SenderJID)
		ref := msgconv.MessageRef{Chat: r.p.chat, ID: re.WAID, Sender: sender, FromMe: r.isMe(sender)}
		if m, err := db.Messages.GetPart(ctx, r.p.row.PortalKey, re.TargetID, ""); err == nil && m != nil {
			ts, _ := types.ParseJID(m.SenderJID)
			ref.ReactionTo = &msgconv.MessageRef{Chat: r.p.chat, ID: m.WAID, Sender: ts, FromMe: m.FromMe, Timestamp: m.Timestamp}
		} else {
			ref.ReactionTo = &msgconv.MessageRef{Chat: r.p.chat, ID: re.TargetID}
		}
		return ref, nil
	}
	m, err := db.Messages.GetByMXID(ctx, evt)
	if err != nil {
		return msgconv.MessageRef{}, err
	} else if m == nil || m.ChatJID != r.p.row.ChatJID || m.Receiver != r.p.row.Receiver {
		return msgconv.MessageRef{}, fmt.Errorf("event %s: %w", evt, msgconv.ErrNotFound)
	}
	sender, _ := types.ParseJID(m.SenderJID)
	ref := msgconv.MessageRef{
		Chat: r.p.chat, ID: m.WAID, Sender: sender, FromMe: m.FromMe,
		PartID: msgconv.PartID(m.PartID), Timestamp: m.Timestamp,
	}
	if target, isEdit := editTarget(m.PartID); isEdit {
		ref.EditOf = &msgconv.MessageRef{Chat: r.p.chat}
		if target != "" {
			orig, err := db.Messages.GetPart(ctx, r.p.row.PortalKey, target, "")
			if err != nil {
				return msgconv.MessageRef{}, err
			}
			ref.EditOf.ID = target
			if orig != nil {
				origSender, _ := types.ParseJID(orig.SenderJID)
				ref.EditOf.Sender, ref.EditOf.FromMe, ref.EditOf.Timestamp = origSender, orig.FromMe, orig.Timestamp
			}
		}
	}
	return ref, nil
}

// An edit is a WhatsApp message of its own, and its row is keyed by its own ID (which
// deduplicates it), so the part ID names the message it edited: "edit:<tag>-><target>", the
// tag being the Matrix event or the part index. Relations to the edit event resolve through
// it (msgconv.MessageRef.EditOf).
const editTargetSep = "->"

func editPartID(tag string, target types.MessageID) string {
	return msgconv.ActionEdit.String() + ":" + tag + editTargetSep + target
}

// editTarget says whether a part ID is an edit's and which message it edited; the target is
// empty for rows written before edits recorded it.
func editTarget(partID string) (target types.MessageID, isEdit bool) {
	rest, ok := strings.CutPrefix(partID, msgconv.ActionEdit.String()+":")
	if !ok {
		return "", false
	}
	if i := strings.LastIndex(rest, editTargetSep); i >= 0 {
		return rest[i+len(editTargetSep):], true
	}
	return "", true
}

func (r *resolver) isMe(jid types.JID) bool {
	return r.wa != nil && jid.User == r.wa.OwnJID().User
}

func (r *resolver) DecryptPollVote(ctx context.Context, info *types.MessageInfo, update *waE2E.PollUpdateMessage) (*waE2E.PollVoteMessage, error) {
	if r.wa == nil {
		return nil, ErrNotConnected
	}
	return r.wa.DecryptPollVote(ctx, info, update)
}
