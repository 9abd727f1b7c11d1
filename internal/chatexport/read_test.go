package chatexport

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestDateOrder(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		first  time.Time
		format string
	}{
		{
			name:   "US cue without a field above 12",
			text:   lines("1/2/24, 10:11 PM - A: x", "3/4/24, 1:00 AM - A: y"),
			first:  at(2024, 1, 2, 22, 11, 0),
			format: "M/D/YY, h:mm AM/PM - (month-first: no field above 12; US-style comma and AM/PM)",
		},
		{
			name:   "first field above 12 overrides the US cue",
			text:   lines("1/2/24, 10:11 PM - A: x", "13/4/24, 1:00 AM - A: y"),
			first:  at(2024, 2, 1, 22, 11, 0),
			format: "D/M/YY, h:mm AM/PM - (day-first: line 2 has first field 13)",
		},
		{
			name:   "lowercase pm is not US",
			text:   lines("1/2/24, 10:11 pm - A: x"),
			first:  at(2024, 2, 1, 22, 11, 0),
			format: "D/M/YY, h:mm AM/PM - (day-first: no field above 12; lowercase or dotted am/pm)",
		},
		{
			name:   "à is French",
			text:   lines("1/2/2024 à 10:11 - A: x"),
			first:  at(2024, 2, 1, 10, 11, 0),
			format: `D/M/YYYY à H:mm - (day-first: no field above 12; "à" before the time)`,
		},
		{
			name:   "conflicting fields fall back to the cue",
			text:   lines("13.1.24, 10:11 - A: x", "1.13.24, 10:12 - A: y"),
			first:  at(2024, 1, 13, 10, 11, 0),
			format: `D.M.YY, H:mm - (day-first: conflicting fields on lines 1 and 2; "." date separator)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ParseText(tt.text, berlin)
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != tt.format {
				t.Errorf("Format = %q, want %q", res.Format, tt.format)
			}
			if len(res.Messages) == 0 || !res.Messages[0].Time.Equal(tt.first) {
				t.Fatalf("first message %+v, want time %v", res.Messages, tt.first)
			}
		})
	}
}

func TestParseTextNoHeaders(t *testing.T) {
	res, err := ParseText("hello\n\nworld", berlin)
	if err != nil {
		t.Fatal(err)
	}
	want := []Unparsed{
		{Line: 1, Text: "hello", Reason: "text before the first message header"},
		{Line: 3, Text: "world", Reason: "text before the first message header"},
	}
	if len(res.Messages) != 0 || len(res.Unparsed) != 2 || res.Unparsed[0] != want[0] || res.Unparsed[1] != want[1] {
		t.Fatalf("got %+v / %+v, want only %+v", res.Messages, res.Unparsed, want)
	}
	if _, err := ParseText("x", nil); err == nil {
		t.Error("ParseText with a nil location: want an error")
	}
}

func buildZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRead(t *testing.T) {
	jpeg := "\xff\xd8\xff\xe0fake jpeg\xff\xd9"
	tests := []struct {
		name     string
		files    map[string]string
		attached string
		wantErr  string
	}{
		{
			name: "iOS _chat.txt",
			files: map[string]string{
				"_chat.txt": "\ufeff[02.01.24, 22:11:30] Anna: Hallo\r\n" +
					"\u200e[02.01.24, 22:12:00] Anna: \u200e<Anhang: 00000013-PHOTO-2024-01-02-22-12-00.jpg>\r\n",
				"00000013-PHOTO-2024-01-02-22-12-00.jpg":            jpeg,
				"__MACOSX/._00000013-PHOTO-2024-01-02-22-12-00.jpg": "resource fork",
			},
			attached: "00000013-PHOTO-2024-01-02-22-12-00.jpg",
		},
		{
			name: "Android named text file",
			files: map[string]string{
				"WhatsApp Chat with Anna.txt": "02/01/2024, 22:11 - Anna: Hallo\n" +
					"02/01/2024, 22:12 - Anna: IMG-20240102-WA0001.jpg (file attached)\n",
				"IMG-20240102-WA0001.jpg": jpeg,
			},
			attached: "IMG-20240102-WA0001.jpg",
		},
		{
			name:    "no chat text",
			files:   map[string]string{"a.jpg": jpeg, "b.jpg": jpeg},
			wantErr: "no chat text file",
		},
		{
			name:    "two unnamed text files",
			files:   map[string]string{"a.txt": "", "b.txt": ""},
			wantErr: "2 text files and none is clearly the chat",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := buildZip(t, tt.files)
			res, err := Read(bytes.NewReader(data), int64(len(data)), berlin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Messages) != 2 || len(res.Unparsed) != 0 {
				t.Fatalf("got %+v, unparsed %+v; want 2 messages", res.Messages, res.Unparsed)
			}
			if got := res.Messages[1].Attachment; got != tt.attached {
				t.Fatalf("Attachment = %q, want %q", got, tt.attached)
			}
			f, ok := res.Files[tt.attached]
			if !ok {
				t.Fatalf("attachment %q not in Files %v", tt.attached, res.Files)
			}
			if len(res.Files) != 1 {
				t.Errorf("Files has %d entries, want only the attachment", len(res.Files))
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			body, err := io.ReadAll(rc)
			if err != nil || string(body) != jpeg {
				t.Fatalf("attachment body %q, %v", body, err)
			}
		})
	}
	if _, err := Read(strings.NewReader("not a zip"), 9, berlin); err == nil || !strings.Contains(err.Error(), "open zip") {
		t.Errorf("Read of a non-zip: err = %v", err)
	}
}

func FuzzParseText(f *testing.F) {
	f.Add(lines("1/2/24, 10:11 PM - A: x", "more", "2/30/24, 9:08 AM - B: y"))
	f.Add("\ufeff\u200e[02.01.24, 22:11:12] F: \u200e<Anhang: a.jpg>\r\nx\r\n")
	f.Add("before\n[2/1/24, 10:11:12\u202fp.\u00a0m.] L: hola\n")
	f.Add("02/01/2024 à 22:11 - M: IMG-1.jpg (fichier joint)\n")
	f.Fuzz(func(t *testing.T, text string) {
		res, err := ParseText(text, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(text, "\n") + 1
		for _, u := range res.Unparsed {
			if u.Line < 1 || u.Line > n {
				t.Fatalf("Unparsed line %d outside 1..%d", u.Line, n)
			}
		}
		last := 0
		for _, m := range res.Messages {
			if m.Line < last || m.Line < 1 || m.Line > n {
				t.Fatalf("message line %d after %d (file has %d)", m.Line, last, n)
			}
			last = m.Line
		}
	})
}
