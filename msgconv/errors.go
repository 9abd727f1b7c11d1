package msgconv

import "errors"

// ErrNotFound is what Resolver implementations wrap when a lookup finds nothing.
var ErrNotFound = errors.New("not found")

// Reasons a Matrix event cannot be sent to WhatsApp. They come wrapped in a *SendError whose Detail says
// which event or field was at fault; test them with errors.Is.
var (
	ErrUnsupportedEventType = errors.New("this kind of Matrix event cannot be sent to WhatsApp")
	ErrUnsupportedMsgType   = errors.New("this kind of message cannot be sent to WhatsApp")
	ErrEmptyMessage         = errors.New("the message is empty")
	ErrInvalidContent       = errors.New("the event content is malformed")
	ErrTargetNotFound       = errors.New("the message it refers to was not bridged to WhatsApp")
	ErrNotOwnMessage        = errors.New("WhatsApp only lets you change your own messages")
	ErrEditTooOld           = errors.New("WhatsApp does not allow editing a message this old")
	ErrEditOfEdit           = errors.New("an edit can only replace the original message, not another edit")
	ErrEditChangesType      = errors.New("WhatsApp can only edit the text of a message, not turn it into another kind")
	ErrUndoEdit             = errors.New("WhatsApp cannot take back an edit; it still shows the edited text")
	ErrRevokeTooOld         = errors.New("WhatsApp does not allow deleting a message this old for everyone")
	ErrTooManyPollOptions   = errors.New("the poll has more options than WhatsApp allows")
	ErrDuplicatePollOption  = errors.New("WhatsApp polls cannot have two options with the same text")
	ErrNotEmoji             = errors.New("WhatsApp reactions can only be an emoji")
)

// SendError is the error ToWhatsApp returns for content that cannot be sent. Its message is meant for the
// Matrix user (the portal can post it as a notice or a message status); Reason is one of the Err* values.
type SendError struct {
	Reason error
	Detail string
}

func (e *SendError) Error() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

func (e *SendError) Unwrap() error { return e.Reason }

func sendErr(reason error, detail string) error {
	return &SendError{Reason: reason, Detail: detail}
}

// ErrForgedEdit is returned by ToMatrix when a WhatsApp edit claims to change someone else's message.
var ErrForgedEdit = errors.New("edit sent by someone other than the message's author")
