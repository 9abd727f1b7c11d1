package bridge_test

import (
	"strings"
	"time"
)

// exportCase is one phone's "Export chat" zip: the chat text as that phone writes it, in its
// language's date format and attachment wording, and what the room must show after the import.
type exportCase struct {
	name      string
	contact   string // the contact's WhatsApp number
	textFile  string // iOS writes _chat.txt; Android names the file after the chat, in its language
	photoName string
	chat      string // with {me} for the user's own name as the phone shows it
	want      []wantImported
	unparsed  []string // what the report must say about lines it could not read
}

// wantImported is one message the room must show, in this order.
type wantImported struct {
	own   bool // from the user's own ghost, else the contact's
	at    time.Time
	body  string
	photo bool
}

// local is a wall-clock time as the phone wrote it; the bridge reads exports in its own zone.
func local(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.Local)
}

func iosLines(ls ...string) string { return strings.Join(ls, "\r\n") + "\r\n" }

func androidLines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// exportCases are the languages the parser supports, on both platforms. The first line of
// each is the encryption notice, which is not a message and must not be imported.
var exportCases = []exportCase{
	{
		name: "English US Android", contact: "4915551410", textFile: "WhatsApp Chat with Sam Carter.txt",
		photoName: "IMG-20200301-WA0001.jpg",
		chat: androidLines(
			"3/1/20, 9:15 AM - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.",
			"3/1/20, 9:15 AM - Sam Carter: Morning! Are we still on for Saturday?",
			"3/1/20, 9:17 AM - {me}: Yes, 10am at the station",
			"bring a jacket, it's cold",
			"3/1/20, 9:18 AM - Sam Carter: IMG-20200301-WA0001.jpg (file attached)",
			"the view from here",
			// Android writes minutes only: the same words twice in a minute are two messages.
			"3/1/20, 9:18 AM - Sam Carter: ok",
			"3/1/20, 9:18 AM - Sam Carter: ok",
			"3/1/20, 9:20 AM - {me}: <Media omitted>",
			"3/1/20, 12:45\u202fPM - Sam Carter: See you then",
		),
		want: []wantImported{
			{at: local(2020, 3, 1, 9, 15, 0), body: "Morning! Are we still on for Saturday?"},
			{own: true, at: local(2020, 3, 1, 9, 17, 0), body: "Yes, 10am at the station\nbring a jacket, it's cold"},
			{at: local(2020, 3, 1, 9, 18, 0), body: "the view from here", photo: true},
			{at: local(2020, 3, 1, 9, 18, 0), body: "ok"},
			{at: local(2020, 3, 1, 9, 18, 0), body: "ok"},
			{own: true, at: local(2020, 3, 1, 9, 20, 0), body: "[media not included in the export]"},
			{at: local(2020, 3, 1, 12, 45, 0), body: "See you then"},
		},
	},
	{
		name: "English UK iOS", contact: "4915551411", textFile: "_chat.txt",
		photoName: "00000004-PHOTO-2020-03-02-18-08-03.jpg",
		chat: iosLines(
			"[02/03/2020, 18:04:51] Sam Carter: \u200eMessages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them.",
			"[02/03/2020, 18:05:10] Sam Carter: Did you get home alright?",
			"[02/03/2020, 18:07:42] {me}: Yes thanks! Train was packed",
			"\u200e[02/03/2020, 18:08:03] Sam Carter: \u200e<attached: 00000004-PHOTO-2020-03-02-18-08-03.jpg>",
			"[02/03/2020, 18:09:15] {me}: Lovely 😍",
			"\u200e[02/03/2020, 18:10:00] Sam Carter: \u200eimage omitted",
		),
		want: []wantImported{
			{at: local(2020, 3, 2, 18, 5, 10), body: "Did you get home alright?"},
			{own: true, at: local(2020, 3, 2, 18, 7, 42), body: "Yes thanks! Train was packed"},
			{at: local(2020, 3, 2, 18, 8, 3), body: "00000004-PHOTO-2020-03-02-18-08-03.jpg", photo: true},
			{own: true, at: local(2020, 3, 2, 18, 9, 15), body: "Lovely 😍"},
			{at: local(2020, 3, 2, 18, 10, 0), body: "[media not included in the export]"},
		},
	},
	{
		name: "German iOS", contact: "4915551412", textFile: "_chat.txt",
		photoName: "00000005-PHOTO-2020-03-04-07-33-10.jpg",
		chat: iosLines(
			"\u200e[04.03.20, 07:30:12] Jana Schmidt: \u200eNachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt. Niemand außerhalb dieses Chats kann sie lesen oder anhören, nicht einmal WhatsApp.",
			"[04.03.20, 07:31:00] Jana Schmidt: Guten Morgen! Kommst du heute ins Büro?",
			"[04.03.20, 07:32:45] {me}: Ja, gegen neun.",
			"Bring bitte die Unterlagen mit",
			"\u200e[04.03.20, 07:33:10] Jana Schmidt: \u200e<Anhang: 00000005-PHOTO-2020-03-04-07-33-10.jpg>",
			"[31.31.20, 07:40:00] Jana Schmidt: kaputt",
		),
		want: []wantImported{
			{at: local(2020, 3, 4, 7, 31, 0), body: "Guten Morgen! Kommst du heute ins Büro?"},
			{own: true, at: local(2020, 3, 4, 7, 32, 45), body: "Ja, gegen neun.\nBring bitte die Unterlagen mit"},
			{at: local(2020, 3, 4, 7, 33, 10), body: "00000005-PHOTO-2020-03-04-07-33-10.jpg", photo: true},
		},
		unparsed: []string{"line 6: date 31.31.20 is not a valid date", "`[31.31.20, 07:40:00] Jana Schmidt: kaputt`"},
	},
	{
		name: "German Android", contact: "4915551413", textFile: "WhatsApp-Chat mit Jana Schmidt.txt",
		photoName: "IMG-20200305-WA0003.jpg",
		chat: androidLines(
			"05.03.20, 19:02 - Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt. Niemand außerhalb dieses Chats kann sie lesen oder anhören, nicht einmal WhatsApp. Tippe, um mehr zu erfahren.",
			"05.03.20, 19:02 - Jana Schmidt: Schau mal, der Rhein!",
			"05.03.20, 19:03 - Jana Schmidt: IMG-20200305-WA0003.jpg (Datei angehängt)",
			"05.03.20, 19:05 - {me}: Wunderschön 😊",
		),
		want: []wantImported{
			{at: local(2020, 3, 5, 19, 2, 0), body: "Schau mal, der Rhein!"},
			{at: local(2020, 3, 5, 19, 3, 0), body: "IMG-20200305-WA0003.jpg", photo: true},
			{own: true, at: local(2020, 3, 5, 19, 5, 0), body: "Wunderschön 😊"},
		},
	},
	{
		name: "French iOS", contact: "4915551414", textFile: "_chat.txt",
		photoName: "00000007-PHOTO-2020-03-06-21-14-00.jpg",
		chat: iosLines(
			"\u200e[06/03/2020 21:12:30] Camille Martin: \u200eLes messages et les appels sont chiffrés de bout en bout. Aucun tiers, pas même WhatsApp, ne peut les lire ou les écouter.",
			"[06/03/2020 21:13:05] Camille Martin: Tu as vu le match ?",
			"[06/03/2020 21:13:40] {me}: Oui ! Quelle fin",
			"\u200e[06/03/2020 21:14:00] Camille Martin: \u200e<pièce jointe : 00000007-PHOTO-2020-03-06-21-14-00.jpg>",
		),
		want: []wantImported{
			{at: local(2020, 3, 6, 21, 13, 5), body: "Tu as vu le match ?"},
			{own: true, at: local(2020, 3, 6, 21, 13, 40), body: "Oui ! Quelle fin"},
			{at: local(2020, 3, 6, 21, 14, 0), body: "00000007-PHOTO-2020-03-06-21-14-00.jpg", photo: true},
		},
	},
	{
		name: "French Android", contact: "4915551415", textFile: "Discussion WhatsApp avec Camille Martin.txt",
		photoName: "IMG-20200307-WA0000.jpg",
		chat: androidLines(
			"07/03/2020 à 08:01 - Les messages et les appels sont chiffrés de bout en bout. Aucun tiers, pas même WhatsApp, ne peut les lire ou les écouter. Appuyez pour en savoir plus.",
			"07/03/2020 à 08:01 - Camille Martin: Bonjour, voici le plan",
			"07/03/2020 à 08:02 - Camille Martin: IMG-20200307-WA0000.jpg (fichier joint)",
			"rendez-vous ici",
			"07/03/2020 à 08:04 - {me}: Merci, à tout à l'heure",
		),
		want: []wantImported{
			{at: local(2020, 3, 7, 8, 1, 0), body: "Bonjour, voici le plan"},
			{at: local(2020, 3, 7, 8, 2, 0), body: "rendez-vous ici", photo: true},
			{own: true, at: local(2020, 3, 7, 8, 4, 0), body: "Merci, à tout à l'heure"},
		},
	},
	{
		name: "Dutch iOS", contact: "4915551416", textFile: "_chat.txt",
		photoName: "00000009-PHOTO-2020-03-08-14-02-40.jpg",
		chat: iosLines(
			"\u200e[08-03-2020 14:01:59] Sanne de Vries: \u200eBerichten en gesprekken worden end-to-end versleuteld. Niemand buiten deze chat, zelfs WhatsApp niet, kan ze lezen of beluisteren.",
			"[08-03-2020 14:02:11] Sanne de Vries: Hoi! Hoe was de vergadering?",
			"[08-03-2020 14:02:30] {me}: Lang, maar goed",
			"\u200e[08-03-2020 14:02:40] Sanne de Vries: \u200e<bijgevoegd: 00000009-PHOTO-2020-03-08-14-02-40.jpg>",
		),
		want: []wantImported{
			{at: local(2020, 3, 8, 14, 2, 11), body: "Hoi! Hoe was de vergadering?"},
			{own: true, at: local(2020, 3, 8, 14, 2, 30), body: "Lang, maar goed"},
			{at: local(2020, 3, 8, 14, 2, 40), body: "00000009-PHOTO-2020-03-08-14-02-40.jpg", photo: true},
		},
	},
	{
		name: "Dutch Android", contact: "4915551417", textFile: "WhatsApp-chat met Sanne de Vries.txt",
		photoName: "IMG-20200309-WA0002.jpg",
		chat: androidLines(
			"09-03-2020 10:20 - Berichten en gesprekken worden end-to-end versleuteld. Niemand buiten deze chat, zelfs WhatsApp niet, kan ze lezen of beluisteren. Tik voor meer info.",
			"09-03-2020 10:20 - {me}: Heb je de foto nog?",
			"09-03-2020 10:22 - Sanne de Vries: IMG-20200309-WA0002.jpg (bestand bijgevoegd)",
			"09-03-2020 10:23 - Sanne de Vries: <Media weggelaten>",
		),
		want: []wantImported{
			{own: true, at: local(2020, 3, 9, 10, 20, 0), body: "Heb je de foto nog?"},
			{at: local(2020, 3, 9, 10, 22, 0), body: "IMG-20200309-WA0002.jpg", photo: true},
			{at: local(2020, 3, 9, 10, 23, 0), body: "[media not included in the export]"},
		},
	},
	{
		name: "Spanish iOS", contact: "4915551418", textFile: "_chat.txt",
		photoName: "00000011-PHOTO-2020-03-10-16-05-30.jpg",
		chat: iosLines(
			"\u200e[10/3/20, 4:05:02\u202fp.\u00a0m.] Lucía García: \u200eLos mensajes y las llamadas están cifrados de extremo a extremo. Nadie fuera de este chat, ni siquiera WhatsApp, puede leerlos ni escucharlos.",
			"[10/3/20, 4:05:10\u202fp.\u00a0m.] Lucía García: ¡Hola! ¿Qué tal el viaje?",
			"[10/3/20, 4:05:20\u202fp.\u00a0m.] {me}: Muy bien, gracias",
			"\u200e[10/3/20, 4:05:30\u202fp.\u00a0m.] Lucía García: \u200e<adjunto: 00000011-PHOTO-2020-03-10-16-05-30.jpg>",
			"[10/3/20, 4:07:00\u202fp.\u00a0m.] Lucía García: ¡Hasta pronto!",
		),
		want: []wantImported{
			{at: local(2020, 3, 10, 16, 5, 10), body: "¡Hola! ¿Qué tal el viaje?"},
			{own: true, at: local(2020, 3, 10, 16, 5, 20), body: "Muy bien, gracias"},
			{at: local(2020, 3, 10, 16, 5, 30), body: "00000011-PHOTO-2020-03-10-16-05-30.jpg", photo: true},
			{at: local(2020, 3, 10, 16, 7, 0), body: "¡Hasta pronto!"},
		},
	},
	{
		name: "Spanish Android", contact: "4915551419", textFile: "Chat de WhatsApp con Lucía García.txt",
		photoName: "IMG-20200311-WA0005.jpg",
		chat: androidLines(
			"11/3/20, 22:40 - Los mensajes y las llamadas están cifrados de extremo a extremo. Nadie fuera de este chat, ni siquiera WhatsApp, puede leerlos ni escucharlos. Toca para obtener más información.",
			"11/3/20, 22:41 - Lucía García: IMG-20200311-WA0005.jpg (archivo adjunto)",
			"mira esto",
			"11/3/20, 22:43 - {me}: ¡Qué bonito!",
		),
		want: []wantImported{
			{at: local(2020, 3, 11, 22, 41, 0), body: "mira esto", photo: true},
			{own: true, at: local(2020, 3, 11, 22, 43, 0), body: "¡Qué bonito!"},
		},
	},
}
