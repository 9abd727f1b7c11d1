package msgconv

import (
	"io"
	"time"
)

// ViewOncePolicy says what to do with WhatsApp view-once media.
type ViewOncePolicy int

const (
	// ViewOnceBridge bridges view-once media like any other media, flagged in its body.
	ViewOnceBridge ViewOncePolicy = iota
	// ViewOnceNotice replaces view-once media with a notice, for deployments that honour the sender's intent.
	ViewOnceNotice
)

// Defaults for Options. WhatsApp refuses edits and revokes of older messages; checking here means the user
// gets a clear error instead of a message that silently never changes on the phones.
const (
	DefaultEditWindow     = 15 * time.Minute
	DefaultRevokeWindow   = 48 * time.Hour
	DefaultMaxPollOptions = 12
)

// Options tunes a conversion. The zero value (or a nil *Options) is valid and uses the defaults.
type Options struct {
	ViewOnce ViewOncePolicy
	// InlineThumbnails asks for WhatsApp's embedded JPEG thumbnails to be uploaded and linked as Matrix
	// thumbnails. Off by default: it costs one extra upload per media message.
	InlineThumbnails bool
	EditWindow       time.Duration
	RevokeWindow     time.Duration
	MaxPollOptions   int
	// Random supplies the message secret of polls started from Matrix. Nil means crypto/rand.
	Random io.Reader
}

var defaultOptions = Options{}

func (o *Options) editWindow() time.Duration {
	if o.EditWindow > 0 {
		return o.EditWindow
	}
	return DefaultEditWindow
}

func (o *Options) revokeWindow() time.Duration {
	if o.RevokeWindow > 0 {
		return o.RevokeWindow
	}
	return DefaultRevokeWindow
}

func (o *Options) maxPollOptions() int {
	if o.MaxPollOptions > 0 {
		return o.MaxPollOptions
	}
	return DefaultMaxPollOptions
}
