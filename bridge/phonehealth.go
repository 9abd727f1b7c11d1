package bridge

import (
	"context"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow/types/events"
)

// WhatsApp unlinks companion devices whose phone has not been online for 14 days. The bridge sees the
// phone only through what it does (messages and receipts from device 0, app-state changes), so it
// remembers when that last happened and warns two days before the unlinking.

// Clock is the time the health checks run on: the phone's last-seen age, ban expiries, retries and
// notice delays. Tests pass a fake one to let twelve days pass without waiting for them.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

const (
	// phoneWarnAfter leaves the user two days before WhatsApp's 14-day unlinking.
	phoneWarnAfter = 12 * 24 * time.Hour
	// phoneCheckEvery is how often the bridge looks at every login's phone.
	phoneCheckEvery = time.Hour
	// phoneSaveEvery bounds how often a busy phone's last-seen time is written to the database.
	phoneSaveEvery    = time.Hour
	kvPhoneSeenPrefix = "phone_seen:"
)

// phoneHealth is when the login's phone was last seen. User.mu guards it.
type phoneHealth struct {
	seen   time.Time
	saved  time.Time
	warned bool
}

func (p *phoneHealth) stale(now time.Time) bool {
	return !p.seen.IsZero() && now.Sub(p.seen) >= phoneWarnAfter
}

// fromPhone reports whether an event shows the user's phone at work.
func (u *User) fromPhone(rawEvt any) bool {
	switch evt := rawEvt.(type) {
	case *events.PairSuccess:
		return true
	case *events.Message:
		return evt.Info.IsFromMe && evt.Info.Sender.Device == 0
	case *events.Receipt:
		return evt.IsFromMe && evt.Sender.Device == 0
	case *events.PushNameSetting, *events.Contact, *events.DeleteForMe, *events.DeleteChat, *events.ClearChat,
		*events.Mute, *events.Pin, *events.Archive, *events.Star, *events.MarkChatAsRead:
		// App-state changes: only the phone makes them while the bridge is its only companion.
		return true
	}
	return false
}

// phoneSeen notes that the phone was just active, and says so if it had been away long enough for a
// warning.
func (u *User) phoneSeen(ctx context.Context) {
	now := u.b.clock.Now()
	u.mu.Lock()
	p := &u.health.phone
	wasWarned := p.warned
	p.seen, p.warned = now, false
	save := now.Sub(p.saved) >= phoneSaveEvery || wasWarned
	if save {
		p.saved = now
	}
	u.mu.Unlock()
	if save {
		if err := u.b.db.KV.Set(ctx, kvPhoneSeenPrefix+string(u.MXID()), now.UTC().Format(time.RFC3339)); err != nil {
			u.log.Warn().Err(err).Msg("Failed to save when the phone was last seen")
		}
	}
	if wasWarned {
		u.b.jobs.Go(context.WithoutCancel(ctx), "health: notice", func(ctx context.Context) {
			u.notify(ctx, "✅ Your phone is online again; WhatsApp will keep this bridge linked.")
		})
	}
}

// loadPhoneSeen reads the saved last-seen time at start; a login without one counts from now, so a
// bridge upgraded to this version does not warn everyone at once.
func (u *User) loadPhoneSeen(ctx context.Context) {
	seen := u.b.clock.Now()
	if s, err := u.b.db.KV.Get(ctx, kvPhoneSeenPrefix+string(u.MXID())); err == nil && s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			seen = t
		}
	}
	u.mu.Lock()
	u.health.phone.seen, u.health.phone.saved = seen, seen
	u.mu.Unlock()
}

// checkPhone warns, once until the phone is back, when it has not been seen for phoneWarnAfter.
func (u *User) checkPhone(ctx context.Context) {
	now := u.b.clock.Now()
	u.mu.Lock()
	p := &u.health.phone
	loggedIn := u.row.WADevice != ""
	warn := loggedIn && p.stale(now) && !p.warned
	if warn {
		p.warned = true
	}
	seen := p.seen
	u.mu.Unlock()
	if !warn {
		return
	}
	days := int(now.Sub(seen) / (24 * time.Hour))
	u.log.Warn().Time("phone_seen", seen).Msg("The phone has not been seen for 12 days")
	u.b.jobs.Go(context.WithoutCancel(ctx), "health: notice", func(ctx context.Context) {
		u.notify(ctx, "⚠️ Your phone has not been online for "+strconv.Itoa(days)+" days (last seen "+seen.Format("2006-01-02 15:04 MST")+
			"). WhatsApp unlinks this bridge after 14 days without the phone, and then nothing is captured. "+
			"Open WhatsApp on your phone, connected to the internet, for a moment to keep the link.")
		u.b.notifyAdmins(ctx, "⚠️ The phone of "+string(u.MXID())+" has not been online for "+strconv.Itoa(days)+
			" days; WhatsApp unlinks the bridge after 14. The user has been asked to open WhatsApp on it.")
	})
}

// watchPhones checks every login's phone every phoneCheckEvery on the bridge's clock, until Stop.
func (b *Bridge) watchPhones(ctx context.Context) {
	for {
		select {
		case <-b.clock.After(phoneCheckEvery):
		case <-ctx.Done():
			return
		}
		b.usersMu.Lock()
		users := make([]*User, 0, len(b.users))
		for _, u := range b.users {
			users = append(users, u)
		}
		b.usersMu.Unlock()
		for _, u := range users {
			u.checkPhone(ctx)
		}
	}
}
