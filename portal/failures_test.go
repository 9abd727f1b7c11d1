package portal

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
)

func TestMediaDownloadFailure(t *testing.T) {
	answer := func(status int, code string) error {
		return mautrix.HTTPError{Response: &http.Response{StatusCode: status},
			RespError: &mautrix.RespError{ErrCode: code, Err: "said the homeserver", StatusCode: status}}
	}
	tests := []struct {
		name      string
		err       error
		permanent bool
		words     string
	}{
		{"404 M_NOT_FOUND", answer(http.StatusNotFound, "M_NOT_FOUND"), true, "not on the homeserver"},
		{"404 without an errcode", mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusNotFound}}, true, "not on the homeserver"},
		{"413 M_TOO_LARGE", answer(http.StatusRequestEntityTooLarge, "M_TOO_LARGE"), true, "too large"},
		{"403 M_FORBIDDEN", answer(http.StatusForbidden, "M_FORBIDDEN"), true, "does not let the bridge"},
		{"502 from a proxy", mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusBadGateway}}, false, ""},
		{"429 M_LIMIT_EXCEEDED", answer(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED"), false, ""},
		{"500 M_UNKNOWN", answer(http.StatusInternalServerError, "M_UNKNOWN"), false, ""},
		{"no answer", mautrix.HTTPError{Message: "request error", WrappedError: errors.New("connection refused")}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mediaDownloadFailure(tt.err, "mxc://test/gone")
			var perm errPermanent
			if got := errors.As(err, &perm); got != tt.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if words := failureWords(err); tt.words != "" && !strings.Contains(words, tt.words) {
				t.Errorf("words = %q, want %q in them", words, tt.words)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap the download's error", err)
			}
		})
	}
}
