package chatexport

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var berlin = time.FixedZone("CET", 3600)

func at(y, mo, d, h, mi, s int) time.Time {
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, berlin)
}

// lines joins sample lines the way an export writes them, with a final newline.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestParseTextLocales(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		format   string
		want     []Message
		unparsed []Unparsed
	}{
		{
			name: "English US Android",
			text: lines(
				"1/2/24, 10:11 PM - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.",
				// Newer Android writes U+202F before PM; text keeps its own.
				"1/2/24, 10:12\u202fPM - Alice Smith: Hi\u202fBob",
				"how are you?",
				"1/2/24, 11:05 AM - +1 555 123 4567: IMG-20240102-WA0001.jpg (file attached)",
				"Look at this",
				"1/2/24, 12:06 AM - Alice Smith: <Media omitted>",
				`1/2/24, 12:07 PM - Alice Smith changed the subject from "Old" to "New: plans"`,
				"2/30/24, 9:08 AM - Bob: broken",
				"still broken",
			),
			format: "M/D/YY, h:mm AM/PM - (month-first: line 8 has second field 30)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 0), System: true, Line: 1, Text: "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more."},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Alice Smith", Text: "Hi\u202fBob\nhow are you?", Line: 2},
				{Time: at(2024, 1, 2, 11, 5, 0), Sender: "+1 555 123 4567", Text: "Look at this", Attachment: "IMG-20240102-WA0001.jpg", Line: 4},
				{Time: at(2024, 1, 2, 0, 6, 0), Sender: "Alice Smith", Omitted: true, Line: 6},
				{Time: at(2024, 1, 2, 12, 7, 0), System: true, Text: `Alice Smith changed the subject from "Old" to "New: plans"`, Line: 7},
			},
			unparsed: []Unparsed{
				{Line: 8, Text: "2/30/24, 9:08 AM - Bob: broken", Reason: "date 2/30/24 is not a valid date"},
				{Line: 9, Text: "still broken", Reason: "continues a message whose header could not be parsed"},
			},
		},
		{
			name: "English US iOS",
			text: lines(
				"\u200e[1/2/24, 10:11:12\u202fPM] Team: \u200eMessages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them.",
				"[1/2/24, 10:11:30\u202fPM] Alice Smith: Morning",
				"second line",
				"\u200e[1/2/24, 10:12:00\u202fPM] Alice Smith: \u200e<attached: 00000012-PHOTO-2024-01-02-22-12-00.jpg>",
				"\u200e[1/2/24, 10:13:00\u202fPM] \u202a+1 555 123 4567\u202c: \u200eimage omitted",
				"\u200e[1/2/24, 10:14:00\u202fPM] Team: \u200eAlice Smith added Bob",
				"[1/2/24, 13:15:00\u202fPM] Bob: hour 13",
			),
			format: "[M/D/YY, h:mm:ss AM/PM] (month-first: no field above 12; US-style comma and AM/PM)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 12), System: true, Line: 1, Text: "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them."},
				{Time: at(2024, 1, 2, 22, 11, 30), Sender: "Alice Smith", Text: "Morning\nsecond line", Line: 2},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Alice Smith", Attachment: "00000012-PHOTO-2024-01-02-22-12-00.jpg", Line: 4},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "+1 555 123 4567", Omitted: true, Line: 5},
				{Time: at(2024, 1, 2, 22, 14, 0), System: true, Text: "Alice Smith added Bob", Line: 6},
			},
			unparsed: []Unparsed{
				{Line: 7, Text: "[1/2/24, 13:15:00\u202fPM] Bob: hour 13", Reason: "hour 13 is not a valid 12-hour time"},
			},
		},
		{
			name: "English UK",
			text: "\ufeff" + strings.ReplaceAll(lines(
				"Exported from my phone",
				"02/01/2024, 22:11 - Messages and calls are end-to-end encrypted.",
				"02/01/2024, 22:12 - Alice: see you",
				"at 5",
				"",
				"02/01/2024, 22:13 - Alice: IMG-20240102-WA0001.jpg (file attached)",
				"02/01/2024, 22:14 - Bob: <Media omitted>",
				"02/01/2024, 22:15 - Bob left",
				"02/01/2024, 25:16 - Bob: bad",
			), "\n", "\r\n"),
			format: "D/M/YYYY, H:mm - (day-first: no field above 12; 24-hour clock)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 0), System: true, Text: "Messages and calls are end-to-end encrypted.", Line: 2},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Alice", Text: "see you\nat 5\n", Line: 3},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Alice", Attachment: "IMG-20240102-WA0001.jpg", Line: 6},
				{Time: at(2024, 1, 2, 22, 14, 0), Sender: "Bob", Omitted: true, Line: 7},
				{Time: at(2024, 1, 2, 22, 15, 0), System: true, Text: "Bob left", Line: 8},
			},
			unparsed: []Unparsed{
				{Line: 1, Text: "Exported from my phone", Reason: "text before the first message header"},
				{Line: 9, Text: "02/01/2024, 25:16 - Bob: bad", Reason: "hour 25 is not a valid 24-hour time"},
			},
		},
		{
			name: "English UK iOS",
			text: lines(
				"[02/03/2024, 18:05:10] Sam: Did you get home alright?",
				"\u200e[02/03/2024, 18:08:03] Sam: \u200e<attached: 00000004-PHOTO-2024-03-02-18-08-03.jpg>",
				"\u200e[02/03/2024, 18:10:00] Sam: \u200eimage omitted",
			),
			format: "[D/M/YYYY, H:mm:ss] (day-first: no field above 12; 24-hour clock)",
			want: []Message{
				{Time: at(2024, 3, 2, 18, 5, 10), Sender: "Sam", Text: "Did you get home alright?", Line: 1},
				{Time: at(2024, 3, 2, 18, 8, 3), Sender: "Sam", Attachment: "00000004-PHOTO-2024-03-02-18-08-03.jpg", Line: 2},
				{Time: at(2024, 3, 2, 18, 10, 0), Sender: "Sam", Omitted: true, Line: 3},
			},
		},
		{
			name: "German Android",
			text: lines(
				"02.01.24, 22:11 - Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.",
				"02.01.24, 22:12 - Anna Müller: Hallo",
				"zusammen",
				"02.01.24, 22:13 - Anna Müller: IMG-20240102-WA0002.jpg (Datei angehängt)",
				"02.01.24, 22:14 - Jan: <Medien ausgeschlossen>",
				"02.01.24, 22:15 - Anna Müller hat Jan hinzugefügt",
				"30.02.24, 22:16 - Jan: kaputt",
			),
			format: "D.M.YY, H:mm - (day-first: line 7 has first field 30)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 0), System: true, Text: "Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.", Line: 1},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Anna Müller", Text: "Hallo\nzusammen", Line: 2},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Anna Müller", Attachment: "IMG-20240102-WA0002.jpg", Line: 4},
				{Time: at(2024, 1, 2, 22, 14, 0), Sender: "Jan", Omitted: true, Line: 5},
				{Time: at(2024, 1, 2, 22, 15, 0), System: true, Text: "Anna Müller hat Jan hinzugefügt", Line: 6},
			},
			unparsed: []Unparsed{
				{Line: 7, Text: "30.02.24, 22:16 - Jan: kaputt", Reason: "date 30.02.24 is not a valid date"},
			},
		},
		{
			name: "German iOS",
			text: lines(
				"\u200e[02.01.24, 22:11:12] Familie: \u200eNachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.",
				"[02.01.24, 22:11:30] Anna: Guten Morgen",
				"wie geht's?",
				"\u200e[02.01.24, 22:12:00] Anna: \u200e<Anhang: 00000013-PHOTO-2024-01-02-22-12-00.jpg>",
				"\u200e[02.01.24, 22:13:00] Jan: \u200eBild weggelassen",
				"[02.01.24, 22:13:61] Jan: kaputt",
			),
			format: `[D.M.YY, H:mm:ss] (day-first: no field above 12; "." date separator)`,
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 12), System: true, Text: "Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.", Line: 1},
				{Time: at(2024, 1, 2, 22, 11, 30), Sender: "Anna", Text: "Guten Morgen\nwie geht's?", Line: 2},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Anna", Attachment: "00000013-PHOTO-2024-01-02-22-12-00.jpg", Line: 4},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Jan", Omitted: true, Line: 5},
			},
			unparsed: []Unparsed{
				{Line: 6, Text: "[02.01.24, 22:13:61] Jan: kaputt", Reason: "time 22:13:61 has minutes or seconds above 59"},
			},
		},
		{
			name: "French with à",
			text: lines(
				"02/01/2024 à 22:11 - Les messages et les appels sont chiffrés de bout en bout.",
				"02/01/2024 à 22:12 - Marie: Salut",
				"ça va ?",
				"02/01/2024 à 22:13 - Marie: IMG-20240102-WA0003.jpg (fichier joint)",
				"02/01/2024 à 22:14 - Luc: <Médias omis>",
				"02/01/2024 à 22:15 - Marie a ajouté Luc",
				"15/01/2024 à 22:16 - Luc: le 15",
				"00/01/2024 à 22:17 - Luc: cassé",
			),
			format: "D/M/YYYY à H:mm - (day-first: line 7 has first field 15)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 0), System: true, Text: "Les messages et les appels sont chiffrés de bout en bout.", Line: 1},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Marie", Text: "Salut\nça va ?", Line: 2},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Marie", Attachment: "IMG-20240102-WA0003.jpg", Line: 4},
				{Time: at(2024, 1, 2, 22, 14, 0), Sender: "Luc", Omitted: true, Line: 5},
				{Time: at(2024, 1, 2, 22, 15, 0), System: true, Text: "Marie a ajouté Luc", Line: 6},
				{Time: at(2024, 1, 15, 22, 16, 0), Sender: "Luc", Text: "le 15", Line: 7},
			},
			unparsed: []Unparsed{
				{Line: 8, Text: "00/01/2024 à 22:17 - Luc: cassé", Reason: "date 00/01/2024 is not a valid date"},
			},
		},
		{
			name: "French without à",
			text: lines(
				"02/01/2024 22:11 - Marie: Salut",
				"02/01/2024 22:12 - Luc: IMG-20240102-WA0004.jpg (fichier joint)",
				"légende",
				"02/01/2024 22:13 - Luc: <Médias omis>",
				"02/01/2024 22:14 - Luc a quitté",
				"02/01/2024 22:1x - pas une en-tête",
			),
			format: "D/M/YYYY H:mm - (day-first: no field above 12; 24-hour clock)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 0), Sender: "Marie", Text: "Salut", Line: 1},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Luc", Attachment: "IMG-20240102-WA0004.jpg", Text: "légende", Line: 2},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Luc", Omitted: true, Line: 4},
				{Time: at(2024, 1, 2, 22, 14, 0), System: true, Text: "Luc a quitté\n02/01/2024 22:1x - pas une en-tête", Line: 5},
			},
		},
		{
			name: "French iOS",
			text: lines(
				"\u200e[06/03/2024 21:12:30] Camille: \u200eLes messages et les appels sont chiffrés de bout en bout.",
				"[06/03/2024 21:13:05] Camille: Tu as vu le match ?",
				"\u200e[06/03/2024 21:14:00] Camille: \u200e<pièce jointe : 00000007-PHOTO-2024-03-06-21-14-00.jpg>",
				"\u200e[06/03/2024 21:15:00] Luc: \u200eimage absente",
			),
			format: "[D/M/YYYY H:mm:ss] (day-first: no field above 12; 24-hour clock)",
			want: []Message{
				{Time: at(2024, 3, 6, 21, 12, 30), System: true, Text: "Les messages et les appels sont chiffrés de bout en bout.", Line: 1},
				{Time: at(2024, 3, 6, 21, 13, 5), Sender: "Camille", Text: "Tu as vu le match ?", Line: 2},
				{Time: at(2024, 3, 6, 21, 14, 0), Sender: "Camille", Attachment: "00000007-PHOTO-2024-03-06-21-14-00.jpg", Line: 3},
				{Time: at(2024, 3, 6, 21, 15, 0), Sender: "Luc", Omitted: true, Line: 4},
			},
		},
		{
			name: "Dutch Android",
			text: lines(
				"02-01-2024 22:11 - Berichten en gesprekken worden end-to-end versleuteld.",
				"02-01-2024 22:12 - Sanne: Hoi",
				"hoe gaat het?",
				"02-01-2024 22:13 - Sanne: IMG-20240102-WA0005.jpg (bestand bijgevoegd)",
				"02-01-2024 22:14 - Pieter: <Media weggelaten>",
				"31-04-2024 22:15 - Pieter: kapot",
			),
			format: "D-M-YYYY H:mm - (day-first: line 6 has first field 31)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 0), System: true, Text: "Berichten en gesprekken worden end-to-end versleuteld.", Line: 1},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Sanne", Text: "Hoi\nhoe gaat het?", Line: 2},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Sanne", Attachment: "IMG-20240102-WA0005.jpg", Line: 4},
				{Time: at(2024, 1, 2, 22, 14, 0), Sender: "Pieter", Omitted: true, Line: 5},
			},
			unparsed: []Unparsed{
				{Line: 6, Text: "31-04-2024 22:15 - Pieter: kapot", Reason: "date 31-04-2024 is not a valid date"},
			},
		},
		{
			name: "Dutch iOS",
			text: lines(
				"\u200e[02-01-2024 22:11:12] Familie: \u200eBerichten en gesprekken worden end-to-end versleuteld.",
				"[02-01-2024 22:11:30] Sanne: Goedemorgen",
				"allemaal",
				"\u200e[02-01-2024 22:12:00] Sanne: \u200e<bijgevoegd: 00000014-PHOTO-2024-01-02-22-12-00.jpg>",
				"\u200e[02-01-2024 22:13:00] Pieter: \u200eafbeelding weggelaten",
				"[02-01-2024 24:00:00] Pieter: kapot",
			),
			format: `[D-M-YYYY H:mm:ss] (day-first: no field above 12; "-" date separator)`,
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 12), System: true, Text: "Berichten en gesprekken worden end-to-end versleuteld.", Line: 1},
				{Time: at(2024, 1, 2, 22, 11, 30), Sender: "Sanne", Text: "Goedemorgen\nallemaal", Line: 2},
				{Time: at(2024, 1, 2, 22, 12, 0), Sender: "Sanne", Attachment: "00000014-PHOTO-2024-01-02-22-12-00.jpg", Line: 4},
				{Time: at(2024, 1, 2, 22, 13, 0), Sender: "Pieter", Omitted: true, Line: 5},
			},
			unparsed: []Unparsed{
				{Line: 6, Text: "[02-01-2024 24:00:00] Pieter: kapot", Reason: "hour 24 is not a valid 24-hour time"},
			},
		},
		{
			name: "Spanish Android",
			text: lines(
				"2/1/24, 22:11 - Los mensajes y las llamadas están cifrados de extremo a extremo.",
				"2/1/24, 22:12 - Lucía: Hola",
				"¿qué tal?",
				"2/1/24, 22:13 - Lucía: IMG-20240102-WA0006.jpg (archivo adjunto)",
				"2/1/24, 22:14 - Pablo: <Multimedia omitido>",
				"2/1/24, 22:15 - Lucía añadió a Pablo",
				"2/13/24, 22:16 - Pablo: roto",
			),
			// A lone second field above 12 wins over the locale cue; the
			// file's other lines then read as month-first and stay valid.
			format: "M/D/YY, H:mm - (month-first: line 7 has second field 13)",
			want: []Message{
				{Time: at(2024, 2, 1, 22, 11, 0), System: true, Text: "Los mensajes y las llamadas están cifrados de extremo a extremo.", Line: 1},
				{Time: at(2024, 2, 1, 22, 12, 0), Sender: "Lucía", Text: "Hola\n¿qué tal?", Line: 2},
				{Time: at(2024, 2, 1, 22, 13, 0), Sender: "Lucía", Attachment: "IMG-20240102-WA0006.jpg", Line: 4},
				{Time: at(2024, 2, 1, 22, 14, 0), Sender: "Pablo", Omitted: true, Line: 5},
				{Time: at(2024, 2, 1, 22, 15, 0), System: true, Text: "Lucía añadió a Pablo", Line: 6},
				{Time: at(2024, 2, 13, 22, 16, 0), Sender: "Pablo", Text: "roto", Line: 7},
			},
		},
		{
			name: "Spanish iOS with a. m. and p. m.",
			text: lines(
				"\u200e[2/1/24, 10:11:12\u202fp.\u00a0m.] Familia: \u200eLos mensajes y las llamadas están cifrados de extremo a extremo.",
				"[2/1/24, 10:11:30\u202fa.\u00a0m.] Lucía: Buenos días",
				"a todos",
				"\u200e[2/1/24, 10:12:00\u202fa.\u00a0m.] Lucía: \u200e<adjunto: 00000015-PHOTO-2024-01-02-10-12-00.jpg>",
				"\u200e[2/1/24, 12:13:00\u202fa.\u00a0m.] Pablo: \u200eimagen omitida",
				"[32/1/24, 10:14:00\u202fa.\u00a0m.] Pablo: roto",
			),
			format: "[D/M/YY, h:mm:ss AM/PM] (day-first: line 6 has first field 32)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 12), System: true, Text: "Los mensajes y las llamadas están cifrados de extremo a extremo.", Line: 1},
				{Time: at(2024, 1, 2, 10, 11, 30), Sender: "Lucía", Text: "Buenos días\na todos", Line: 2},
				{Time: at(2024, 1, 2, 10, 12, 0), Sender: "Lucía", Attachment: "00000015-PHOTO-2024-01-02-10-12-00.jpg", Line: 4},
				{Time: at(2024, 1, 2, 0, 13, 0), Sender: "Pablo", Omitted: true, Line: 5},
			},
			unparsed: []Unparsed{
				{Line: 6, Text: "[32/1/24, 10:14:00\u202fa.\u00a0m.] Pablo: roto", Reason: "date 32/1/24 is not a valid date"},
			},
		},
		{
			name: "Spanish iOS 24h without comma",
			text: lines(
				"[2/1/24 22:11:12] Lucía: Hola",
				"[2/1/24 22:11:30] Pablo: \u200e<adjunto: 00000016-AUDIO-2024-01-02-22-11-30.opus>",
			),
			format: "[D/M/YY H:mm:ss] (day-first: no field above 12; 24-hour clock)",
			want: []Message{
				{Time: at(2024, 1, 2, 22, 11, 12), Sender: "Lucía", Text: "Hola", Line: 1},
				{Time: at(2024, 1, 2, 22, 11, 30), Sender: "Pablo", Attachment: "00000016-AUDIO-2024-01-02-22-11-30.opus", Line: 2},
			},
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
			if len(res.Messages) != len(tt.want) {
				t.Errorf("got %d messages, want %d", len(res.Messages), len(tt.want))
			}
			for i := range min(len(res.Messages), len(tt.want)) {
				if !reflect.DeepEqual(res.Messages[i], tt.want[i]) {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, res.Messages[i], tt.want[i])
				}
			}
			if !reflect.DeepEqual(res.Unparsed, tt.unparsed) {
				t.Errorf("Unparsed:\n got %+v\nwant %+v", res.Unparsed, tt.unparsed)
			}
		})
	}
}
