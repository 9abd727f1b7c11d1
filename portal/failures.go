package portal

import (
	"errors"
	"fmt"
	"net/http"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// explainedError is an error with the words a room notice uses for it: the error itself is
// for the log, and its text is rarely fit for the people in the room.
type explainedError struct {
	err   error
	words string
}

func (e *explainedError) Error() string { return e.err.Error() }
func (e *explainedError) Unwrap() error { return e.err }

func explained(err error, words string) error { return &explainedError{err: err, words: words} }

// mediaDownloadFailure classifies a failed download of a Matrix user's media. What the
// homeserver says is not there, or will not give us, stays so: retrying it would hold every
// later message of the chat back for nothing. Everything else (the homeserver down or busy,
// the network) is worth another attempt.
func mediaDownloadFailure(err error, url id.ContentURIString) error {
	err = fmt.Errorf("failed to download the media from Matrix: %w", err)
	var words string
	switch status := httpStatus(err); {
	case errors.Is(err, mautrix.MNotFound) || status == http.StatusNotFound || status == http.StatusGone:
		words = fmt.Sprintf("its file is not on the homeserver (%s)", url)
	case errors.Is(err, mautrix.MTooLarge) || status == http.StatusRequestEntityTooLarge:
		words = fmt.Sprintf("its file is too large for the homeserver to hand to the bridge (%s)", url)
	case errors.Is(err, mautrix.MForbidden) || status == http.StatusForbidden:
		words = fmt.Sprintf("the homeserver does not let the bridge download its file (%s)", url)
	case status == http.StatusBadRequest:
		words = fmt.Sprintf("the homeserver refused its media URL %s", url)
	default:
		return err
	}
	return permanent(explained(err, words))
}

// httpStatus is the status of the homeserver's answer behind err, or 0 when it did not answer.
func httpStatus(err error) int {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		return httpErr.Response.StatusCode
	}
	var httpErrPtr *mautrix.HTTPError
	if errors.As(err, &httpErrPtr) && httpErrPtr.Response != nil {
		return httpErrPtr.Response.StatusCode
	}
	return 0
}

// failureWords says in words why an item failed, for the notice in the room.
func failureWords(cause error) string {
	var ex *explainedError
	if errors.As(cause, &ex) {
		return ex.words
	}
	return cause.Error()
}
