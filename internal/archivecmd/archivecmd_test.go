package archivecmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/causeway/causeway/archive"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in       string
		endOfDay bool
		want     time.Time
		wantErr  string
	}{
		{"2026-03-31", false, time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), ""},
		{"2026-03-31", true, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), ""},
		{"2026-03-31T12:30:00+02:00", true, time.Date(2026, 3, 31, 10, 30, 0, 0, time.UTC), ""},
		{" 2026-03-31T10:30:00.5Z ", false, time.Date(2026, 3, 31, 10, 30, 0, 5e8, time.UTC), ""},
		{"31.03.2026", false, time.Time{}, "neither a date"},
		{"2026-02-30", false, time.Time{}, "neither a date"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, tt.endOfDay)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTime(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%q, %v) = %v, %v; want %v", tt.in, tt.endOfDay, got, err, tt.want)
			}
		})
	}
}

func TestReadKey(t *testing.T) {
	const key = "causeway.test/archive+0a1b2c3d+AXt2jkzrd1uREGvcIo6lro09opdpV7mjaqB0r9LOI7j"
	dir := t.TempDir()
	good := filepath.Join(dir, "archive-signing.pub")
	bad := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(good, []byte(key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("just some notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want, wantErr string
	}{
		{key, key, ""},
		{good, key, ""},
		{bad, "", "does not hold a verifier key"},
		{filepath.Join(dir, "missing.pub"), "", "neither a verifier key"},
	}
	for _, tt := range tests {
		got, err := ReadKey(tt.in)
		if got != tt.want || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ReadKey(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestWriteGaps: an open gap reads "since T, still open"; a closed one its window; a point event its time;
// and no gaps is the one answer that certifies the window.
func TestWriteGaps(t *testing.T) {
	t1 := time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)
	cases := []struct {
		name string
		gaps []archive.Gap
		want []string
	}{
		{"none", nil, []string{"No gaps from 2026-03-02T14:00:00Z to 2026-03-02T15:00:00Z"}},
		{"open", []archive.Gap{{Start: t1, End: t1.Add(58 * time.Minute), Reason: archive.GapDisconnected, Account: "@a:x",
			Detail: "client outdated", StartIndex: 7, EndIndex: -1}},
			[]string{"1 gap from", "since 2026-03-02T14:02:00Z, still open  disconnected account=@a:x: client outdated [entry 7]"}},
		{"closed", []archive.Gap{{Start: t1, End: t1.Add(time.Minute), Reason: archive.GapDisconnected, StartIndex: 7, EndIndex: 9}},
			[]string{"2026-03-02T14:02:00Z .. 2026-03-02T14:03:00Z  disconnected"}},
		{"point", []archive.Gap{{Start: t1, End: t1, Reason: archive.GapUndecryptable, StartIndex: 7, EndIndex: 7}},
			[]string{"  2026-03-02T14:02:00Z  undecryptable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sb strings.Builder
			WriteGaps(&sb, t1.Add(-2*time.Minute), t1.Add(58*time.Minute), tc.gaps)
			for _, w := range tc.want {
				if !strings.Contains(sb.String(), w) {
					t.Errorf("output %q lacks %q", sb.String(), w)
				}
			}
			if len(tc.gaps) > 0 && strings.Contains(sb.String(), "No gaps") {
				t.Errorf("gaps certified away: %q", sb.String())
			}
		})
	}
}
