package bridge_test

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"codeberg.org/causeway/causeway/internal/importapi"
	"codeberg.org/causeway/causeway/internal/importcmd"
)

// cliContact is the contact whose chat `causeway import` fills.
const cliContact = "4915551420"

// cliExport is an English (UK) Android export with a photo, an attachment the zip lacks and
// a line no parser could read; its times are a New York phone's.
func cliExport(t *testing.T) (path string, photo []byte, want []wantImported) {
	t.Helper()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, mi int) time.Time { return time.Date(2020, 4, 14, h, mi, 0, 0, ny) }
	photo = photoFor(t, 5)
	chat := androidLines(
		"14/04/2020, 08:30 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.",
		"14/04/2020, 08:31 - Robin: Here's the rota for next week",
		"14/04/2020, 08:31 - Robin: IMG-20200414-WA0007.jpg (file attached)",
		"14/04/2020, 08:33 - Alice Import: Thanks, got it",
		"14/04/2020, 08:34 - Robin: IMG-20200414-WA0008.jpg (file attached)",
		"14/04/2020, 25:00 - Robin: garbled",
	)
	want = []wantImported{
		{at: at(8, 31), body: "Here's the rota for next week"},
		{at: at(8, 31), body: "IMG-20200414-WA0007.jpg", photo: true},
		{own: true, at: at(8, 33), body: "Thanks, got it"},
		{at: at(8, 34), body: "[IMG-20200414-WA0008.jpg was not in the export]"},
	}
	path = filepath.Join(t.TempDir(), "WhatsApp Chat with Robin.zip")
	data := buildExport(t, [2]string{"WhatsApp Chat with Robin.txt", chat}, [2]string{"IMG-20200414-WA0007.jpg", string(photo)})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, photo, want
}

func runImportCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = importcmd.Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func testImportCLI(t *testing.T, f *importFixture) {
	zipPath, photo, want := cliExport(t)
	chat := f.chats[cliContact]
	// The file before the options, and no --user: the only logged-in user is meant.
	code, stdout, stderr := runImportCLI(zipPath, "-c", f.cfgPath, "--chat", "+"+cliContact, "--tz", "America/New_York")
	if code != 0 {
		t.Fatalf("causeway import exited %d: %s%s", code, stdout, stderr)
	}
	for _, s := range []string{
		"Chat " + cliContact + "@s.whatsapp.net of @import_alice:localhost, room " + string(chat.room),
		"time zone America/New_York",
		"Imported 4 messages from the export (0 were already here, 0 are newer",
		"1 attachments the chat names are not in the zip (imported as a note): IMG-20200414-WA0008.jpg",
		"1 lines could not be read:\n* line 6: hour 25 is not a valid 24-hour time: `14/04/2020, 25:00 - Robin: garbled`",
	} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	checkImported(t, f, chat, want, photo)
	checkArchived(t, chat, len(want), photo)

	code, stdout, stderr = runImportCLI("-c", f.cfgPath, "--chat", cliContact+"@s.whatsapp.net", "--tz", "America/New_York", zipPath)
	if code != 0 || !strings.Contains(stdout, "Imported 0 messages from the export (4 were already here") {
		t.Fatalf("second causeway import exited %d:\n%s%s", code, stdout, stderr)
	}
	checkImported(t, f, chat, want, photo)
	checkArchived(t, chat, len(want), photo)
}

func testImportCLISeveralUsers(t *testing.T, f *importFixture) {
	loginWithQR(t, f.cfg, "import_bob", "4915551401", "Bob Import")
	zipPath, _, _ := cliExport(t)
	code, stdout, stderr := runImportCLI("-c", f.cfgPath, "--chat", "+"+cliContact, "--tz", "America/New_York", zipPath)
	if code != 1 || !strings.Contains(stderr, "2 users are logged in to WhatsApp (") ||
		!strings.Contains(stderr, "@import_alice:localhost") || !strings.Contains(stderr, "(--user)") {
		t.Errorf("without --user: exit %d, stderr %q; want 1 and a request to name one of the two", code, stderr)
	}
	code, stdout, stderr = runImportCLI("-c", f.cfgPath, "--user", "@import_alice:localhost", "--chat", "+"+cliContact, "--tz", "America/New_York", zipPath)
	if code != 0 || !strings.Contains(stdout, "Imported 0 messages from the export (4 were already here") {
		t.Errorf("with --user: exit %d:\n%s%s", code, stdout, stderr)
	}
}

func testProvisionRefusals(t *testing.T, f *importFixture) {
	zipPath, _, _ := cliExport(t)
	goodZip, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	noChatText := buildExport(t, [2]string{"IMG-1.jpg", "x"}, [2]string{"IMG-2.jpg", "y"})
	token := "Bearer " + f.cfg.Appservice.ASToken
	good := url.Values{"chat": {cliContact + "@s.whatsapp.net"}}
	with := func(kv ...string) url.Values {
		q := url.Values{"chat": {good.Get("chat")}}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return q
	}
	tests := []struct {
		name       string
		auth       string
		query      url.Values
		body       []byte
		wantStatus int
		wantCode   string
		wantError  string
	}{
		{"no token", "", good, goodZip, 401, "M_MISSING_TOKEN", "Authorization: Bearer"},
		{"wrong token", "Bearer " + strings.Repeat("x", 64), good, goodZip, 401, "M_UNKNOWN_TOKEN", "Wrong token"},
		{"hs_token instead of as_token", "Bearer " + f.cfg.Appservice.HSToken, good, goodZip, 401, "M_UNKNOWN_TOKEN", "as_token"},
		{"no chat", token, url.Values{}, goodZip, 400, "M_INVALID_PARAM", "chat: missing"},
		{"chat not a JID", token, url.Values{"chat": {"Robin"}}, goodZip, 400, "M_INVALID_PARAM", `chat: "Robin" is not a WhatsApp chat`},
		{"chat without a room", token, url.Values{"chat": {"+4915559999999"}}, goodZip, 400, "M_INVALID_PARAM", "chat: 4915559999999@s.whatsapp.net has no room for @import_alice:localhost"},
		{"user not an MXID", token, with("user", "import_alice"), goodZip, 400, "M_INVALID_PARAM", `user: "import_alice" is not a Matrix user ID`},
		{"user below the user level", token, with("user", "@relayonly:localhost"), goodZip, 400, "M_INVALID_PARAM", "user: @relayonly:localhost has the relay permission level; importing takes user"},
		{"user not permitted", token, with("user", "@nobody:localhost"), goodZip, 400, "M_INVALID_PARAM", "user: @nobody:localhost may not use this bridge"},
		{"user never logged in", token, with("user", "@import_bob:localhost"), goodZip, 400, "M_INVALID_PARAM", "user: @import_bob:localhost has never used this bridge"},
		{"bad time zone", token, with("tz", "Mars/Olympus"), goodZip, 400, "M_INVALID_PARAM", `tz: time zone "Mars/Olympus" is not an IANA zone name`},
		{"empty body", token, good, nil, 400, "M_INVALID_PARAM", "the request body is empty"},
		{"not a zip", token, good, []byte("hello, bridge"), 400, "M_INVALID_PARAM", "not a WhatsApp chat export: chatexport: open zip"},
		{"zip without chat text", token, good, noChatText, 400, "M_INVALID_PARAM", "no chat text file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, importcmd.BridgeURL(f.cfg)+importapi.Path+"?"+tt.query.Encode(), bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body importapi.ErrorResponse
			_ = jsonDecode(resp, &body)
			if resp.StatusCode != tt.wantStatus || body.ErrCode != tt.wantCode || !strings.Contains(body.Error, tt.wantError) {
				t.Errorf("got %d %s %q, want %d %s and %q", resp.StatusCode, body.ErrCode, body.Error, tt.wantStatus, tt.wantCode, tt.wantError)
			}
		})
	}

	t.Run("CLI with the wrong token", func(t *testing.T) {
		cfg := *f.cfg
		cfg.Appservice.ASToken = strings.Repeat("y", 64)
		data, err := yaml.Marshal(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runImportCLI("-c", path, "--chat", "+"+cliContact, zipPath)
		if code != 1 || !strings.Contains(stderr, "refused the import (401 Unauthorized): Wrong token") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}
