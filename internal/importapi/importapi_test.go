package importapi

import (
	"strings"
	"testing"
)

func TestReportText(t *testing.T) {
	rep := &Report{Imported: 3, AlreadyThere: 1, Newer: 2, MissingFiles: []string{"IMG-1.jpg"}}
	for i := 1; i <= 3; i++ {
		rep.Unparsed = append(rep.Unparsed, Unparsed{Line: i, Text: "bad `line`", Reason: "why"})
	}
	tests := []struct {
		name   string
		limit  int
		want   []string
		absent []string
	}{
		{"all lines", 0, []string{
			"Imported 3 messages from the export (1 were already here, 2 are newer than the bridge's history and were left out).",
			"1 attachments the chat names are not in the zip (imported as a note): IMG-1.jpg",
			"3 lines could not be read:\n* line 1: why: `bad 'line'`\n* line 2:", "* line 3:",
		}, []string{"more"}},
		{"limited", 2, []string{"* line 2:", "* … and 1 more"}, []string{"* line 3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rep.Text(tt.limit)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("text lacks %q:\n%s", w, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("text has %q:\n%s", a, got)
				}
			}
		})
	}
	if clean := (&Report{Imported: 1}).Text(0); strings.Contains(clean, "could not be read") || strings.Contains(clean, "not in the zip") {
		t.Errorf("a clean import's text mentions problems: %q", clean)
	}
}

func TestLocation(t *testing.T) {
	if loc, err := Location(""); err != nil || loc.String() != "Local" {
		t.Errorf(`Location("") = %v, %v; want the bridge's own zone`, loc, err)
	}
	if loc, err := Location("Europe/Berlin"); err != nil || loc.String() != "Europe/Berlin" {
		t.Errorf("Location(Europe/Berlin) = %v, %v", loc, err)
	}
	if _, err := Location("Berlin"); err == nil || !strings.Contains(err.Error(), "IANA zone name like Europe/Berlin") {
		t.Errorf("Location(Berlin) error = %v", err)
	}
}
