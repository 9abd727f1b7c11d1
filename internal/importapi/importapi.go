// Package importapi is the contract between the bridge's import endpoint and `causeway import`:
// the endpoint's path and query, the JSON of its report and of its errors, the report's wording
// (the bot command prints the same words) and how both sides read a time zone. It is its own
// package so that the daemon links the contract and not the command line that uses it.
package importapi

import (
	"fmt"
	"strings"
	"time"
)

// Path is the bridge's provisioning endpoint for imports, on the appservice listener. It takes
// the zip as the request body, the Matrix user as ?user= (optional when only one user is logged
// in), the chat as ?chat= and the phone's time zone as ?tz= (optional), and answers a Report.
const Path = "/_causeway/provision/v1/import"

// Report says what one import did.
type Report struct {
	User   string `json:"user"`
	Chat   string `json:"chat"`
	RoomID string `json:"room_id"`
	// Format is the date layout the parser found and why, to check an import whose dates look wrong.
	Format   string `json:"format"`
	TimeZone string `json:"time_zone"`
	// Messages counts the export's messages, system lines (the encryption notice, group events) not included.
	Messages     int `json:"messages"`
	Imported     int `json:"imported"`
	AlreadyThere int `json:"already_there"`
	Newer        int `json:"newer"`
	// MissingFiles are attachments the chat names that the zip does not hold.
	MissingFiles []string `json:"missing_files,omitempty"`
	// TooLarge are attachments over the homeserver's upload limit, imported as a note.
	TooLarge []string `json:"too_large,omitempty"`
	// UnparsedTotal counts the unparsed lines; Unparsed lists the first of them.
	UnparsedTotal int        `json:"unparsed_total,omitempty"`
	Unparsed      []Unparsed `json:"unparsed,omitempty"`
}

// Unparsed is a line of the export that could not be read, and why.
type Unparsed struct {
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// ErrorResponse is the body of every answer but 200, in the Matrix error shape the listener uses
// elsewhere.
type ErrorResponse struct {
	ErrCode string `json:"errcode"`
	Error   string `json:"error"`
}

// Text is the report as the bot and the CLI show it: Markdown that reads as plain text. It lists
// at most maxUnparsed unreadable lines (all of them when maxUnparsed is 0): a chat room is no place
// for hundreds, a terminal is.
func (r *Report) Text(maxUnparsed int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Imported %d messages from the export (%d were already here, %d are newer than the bridge's history and were left out).",
		r.Imported, r.AlreadyThere, r.Newer)
	if len(r.MissingFiles) > 0 {
		fmt.Fprintf(&sb, "\n\n%d attachments the chat names are not in the zip (imported as a note): %s",
			len(r.MissingFiles), strings.Join(r.MissingFiles, ", "))
	}
	if len(r.TooLarge) > 0 {
		fmt.Fprintf(&sb, "\n\n%d attachments are larger than the homeserver accepts (imported as a note): %s",
			len(r.TooLarge), strings.Join(r.TooLarge, ", "))
	}
	if len(r.Unparsed) > 0 {
		total := max(r.UnparsedTotal, len(r.Unparsed))
		fmt.Fprintf(&sb, "\n\n%d lines could not be read:\n", total)
		for i, u := range r.Unparsed {
			if maxUnparsed > 0 && i == maxUnparsed {
				fmt.Fprintf(&sb, "* … and %d more\n", total-maxUnparsed)
				break
			}
			fmt.Fprintf(&sb, "* line %d: %s: `%s`\n", u.Line, u.Reason, strings.ReplaceAll(u.Text, "`", "'"))
		}
	}
	return sb.String()
}

// Location reads a time zone as an operator types it: an IANA name such as Europe/Berlin, or ""
// for the bridge's own. Exports carry no zone: their times are the phone's wall clock.
func Location(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA zone name like Europe/Berlin: %w", name, err)
	}
	return loc, nil
}
