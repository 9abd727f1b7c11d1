package chatexport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// headerRE matches the date and time that start every message, in the
// Android form "D/M/YY, H:MM - " and the iOS form "[D/M/YY, H:MM:SS] ".
// Spaces are normalised before matching (iOS puts U+202F before AM/PM).
var headerRE = regexp.MustCompile(`^(\[)?(\d{1,2})([./-])(\d{1,2})([./-])(\d{4}|\d{2})\.?(, ?| à | )` +
	`(\d{1,2}):(\d{2})(?::(\d{2}))?(?: ?([AaPp])(\.?) ?[Mm]\.?)?(\] ?| [-–] )(.*)$`)

// header is a line that looks like the start of a message; its date is not
// yet interpreted because day/month order is decided for the whole file.
type header struct {
	line      int
	bracket   bool
	date      string // as written, for error messages
	d1, d2    int
	year      int
	longYear  bool
	sep       string
	dtSep     string
	hour      int
	min, sec  int
	hasSec    bool
	meridiem  byte // 0 for 24h, 'a' or 'p'
	upperAMPM bool
	rest      string // everything after the header
}

// spaceReplacer turns the narrow and non-breaking spaces some exports use in
// times into plain spaces so one pattern covers them.
var spaceReplacer = strings.NewReplacer("\u202F", " ", "\u00A0", " ", "\u2009", " ")

func matchHeader(line string, n int) *header {
	// iOS starts media and system lines with U+200E; newPending reads the
	// same mark on the text itself.
	s := strings.TrimLeft(line, "\u200E\u200F")
	if len(s) == 0 || (s[0] != '[' && (s[0] < '0' || s[0] > '9')) {
		return nil
	}
	// The message text after the header is taken from s, so only the header
	// is effectively normalised; the text is kept as written.
	norm := spaceReplacer.Replace(s)
	m := headerRE.FindStringSubmatchIndex(norm)
	if m == nil {
		return nil
	}
	restStart := origOffset(s, m[2*14])
	g := func(i int) string {
		if m[2*i] < 0 {
			return ""
		}
		return norm[m[2*i]:m[2*i+1]]
	}
	if g(3) != g(5) {
		return nil // "1/2-24" is not a date anyone's phone writes
	}
	if (g(1) == "[") != strings.HasPrefix(g(13), "]") {
		return nil
	}
	atoi := func(i int) int { v, _ := strconv.Atoi(g(i)); return v }
	h := &header{
		line:      n,
		bracket:   g(1) == "[",
		date:      g(2) + g(3) + g(4) + g(5) + g(6),
		d1:        atoi(2),
		d2:        atoi(4),
		year:      atoi(6),
		longYear:  len(g(6)) == 4,
		sep:       g(3),
		dtSep:     g(7),
		hour:      atoi(8),
		min:       atoi(9),
		sec:       atoi(10),
		hasSec:    g(10) != "",
		upperAMPM: g(11) == "A" || g(11) == "P",
		rest:      s[restStart:],
	}
	if g(11) != "" {
		h.meridiem = strings.ToLower(g(11))[0]
		if g(12) == "." {
			h.upperAMPM = false // "a. m." is Spanish, not US
		}
	}
	if !h.longYear {
		h.year += 2000
	}
	return h
}

// origOffset maps a byte offset in spaceReplacer.Replace(s) back to s.
func origOffset(s string, normOff int) int {
	o, n := 0, 0
	for o < len(s) && n < normOff {
		r, size := utf8.DecodeRuneInString(s[o:])
		o += size
		switch r {
		case '\u202F', '\u00A0', '\u2009':
			n++
		default:
			n += size
		}
	}
	return o
}

// time interprets the header; a non-empty reason says why it cannot be.
func (h *header) time(dayFirst bool, loc *time.Location) (time.Time, string) {
	day, month := h.d1, h.d2
	if !dayFirst {
		day, month = h.d2, h.d1
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, h.year) {
		return time.Time{}, fmt.Sprintf("date %s is not a valid date", h.date)
	}
	hour := h.hour
	switch h.meridiem {
	case 0:
		if hour > 23 {
			return time.Time{}, fmt.Sprintf("hour %d is not a valid 24-hour time", hour)
		}
	default:
		if hour < 1 || hour > 12 {
			return time.Time{}, fmt.Sprintf("hour %d is not a valid 12-hour time", hour)
		}
		hour %= 12
		if h.meridiem == 'p' {
			hour += 12
		}
	}
	if h.min > 59 || h.sec > 59 {
		return time.Time{}, fmt.Sprintf("time %d:%02d:%02d has minutes or seconds above 59", h.hour, h.min, h.sec)
	}
	return time.Date(h.year, time.Month(month), day, hour, h.min, h.sec, 0, loc), ""
}

func daysIn(month, year int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// monthFirstCue reports whether the header looks like a US phone's: only
// those write "M/D/YY, h:mm AM"; every other locale we know puts the day first.
func (h *header) monthFirstCue() bool {
	return h.sep == "/" && strings.HasPrefix(h.dtSep, ",") && h.meridiem != 0 && h.upperAMPM
}

type dateOrder struct {
	dayFirst bool
	why      string
}

// decideOrder picks day/month order for a whole file, since one line like
// "1/2/24" cannot say it, but "13/2/24" elsewhere in the file can.
func decideOrder(hs []*header) dateOrder {
	if len(hs) == 0 {
		return dateOrder{dayFirst: true, why: "no message header found"}
	}
	var firstBig, secondBig *header
	for _, h := range hs {
		if firstBig == nil && h.d1 > 12 {
			firstBig = h
		}
		if secondBig == nil && h.d2 > 12 {
			secondBig = h
		}
	}
	switch {
	case firstBig != nil && secondBig == nil:
		return dateOrder{true, fmt.Sprintf("day-first: line %d has first field %d", firstBig.line, firstBig.d1)}
	case secondBig != nil && firstBig == nil:
		return dateOrder{false, fmt.Sprintf("month-first: line %d has second field %d", secondBig.line, secondBig.d2)}
	}
	prefix := "no field above 12"
	if firstBig != nil {
		prefix = fmt.Sprintf("conflicting fields on lines %d and %d", firstBig.line, secondBig.line)
	}
	if hs[0].monthFirstCue() {
		return dateOrder{false, "month-first: " + prefix + "; US-style comma and AM/PM"}
	}
	return dateOrder{true, "day-first: " + prefix + "; " + hs[0].dayFirstCue()}
}

// dayFirstCue names what marks a header as not US-style, for Result.Format.
func (h *header) dayFirstCue() string {
	switch {
	case strings.Contains(h.dtSep, "à"):
		return `"à" before the time`
	case h.sep != "/":
		return strconv.Quote(h.sep) + " date separator"
	case h.meridiem == 0:
		return "24-hour clock"
	case !strings.HasPrefix(h.dtSep, ","):
		return "no comma after the date"
	default:
		return "lowercase or dotted am/pm"
	}
}

// layout describes the header's form, e.g. "[D.M.YY, H:mm:ss]".
func (h *header) layout(dayFirst bool) string {
	a, b := "D", "M"
	if !dayFirst {
		a, b = "M", "D"
	}
	y := "YY"
	if h.longYear {
		y = "YYYY"
	}
	t := "H:mm"
	if h.meridiem != 0 {
		t = "h:mm"
	}
	if h.hasSec {
		t += ":ss"
	}
	if h.meridiem != 0 {
		t += " AM/PM"
	}
	s := a + h.sep + b + h.sep + y + h.dtSep + t
	if h.bracket {
		return "[" + s + "]"
	}
	return s + " -"
}
