// Package importcmd is `causeway import`: it posts a WhatsApp chat export to the running bridge,
// because only the bridge may write to the archive, and prints the bridge's report. What it and
// the bridge agree on is in internal/importapi; only cmd/causeway (and the bridge's tests, which
// run it against a real bridge) import this package.
package importcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/cliflags"
	"codeberg.org/causeway/causeway/internal/importapi"
)

// Exit codes, as the other commands of causeway use them.
const (
	exitFailure = 1
	exitUsage   = 2
)

const usageText = `Usage: causeway import -c config.yaml --chat JID [--user @MXID] [--tz ZONE] FILE.zip

Imports a WhatsApp chat export (the zip from the phone's "Export chat", with media) into the
chat's Matrix room, for the time before the bridge: the messages arrive with their original
times and senders, and the archive records them with source "export". Importing the same zip
again adds nothing.

The running bridge does the import (it alone may write the archive): this command sends the
zip to its appservice listener, authenticated with appservice.as_token from the config, and
prints what it did, including every line of the chat it could not read.

Options:
`

// Summary is the one line `causeway help` shows.
const Summary = "import a WhatsApp chat export zip into a chat's room, through the running bridge"

// Run is `causeway import`.
func Run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("causeway import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", "config.yaml", "path to the bridge's config file")
	chat := fs.String("chat", "", "the WhatsApp chat: a `JID` (4917612345678@s.whatsapp.net, 120363000000000001@g.us) or a phone number")
	user := fs.String("user", "", "the Matrix user whose chat it is (`@MXID`); needed when more than one user is logged in")
	tz := fs.String("tz", "", "the phone's time `ZONE` (IANA name, e.g. Europe/Berlin); default: the bridge's")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	rest, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	usageError := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "causeway import: %s\n", fmt.Sprintf(format, args...))
		fs.Usage()
		return exitUsage
	}
	switch {
	case len(rest) != 1:
		return usageError("expected one FILE.zip besides the options, got %d: %q", len(rest), rest)
	case *chat == "":
		return usageError("--chat is required")
	}
	if _, err := importapi.Location(*tz); err != nil {
		return usageError("--tz: %v", err)
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "causeway import: bad config: %v\n", err)
		return exitUsage
	}
	if !cfg.TokensGenerated() {
		fmt.Fprintf(stderr, "causeway import: %s has no appservice.as_token yet; the bridge cannot be running on it (see `causeway -g`)\n", *configPath)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := Post(ctx, Request{
		Bridge: BridgeURL(cfg), Token: cfg.Appservice.ASToken, File: rest[0], User: *user, Chat: *chat, TimeZone: *tz,
	})
	if err != nil {
		fmt.Fprintf(stderr, "causeway import: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "Chat %s of %s, room %s\nDates read as %s, time zone %s\n\n%s\n",
		rep.Chat, rep.User, rep.RoomID, rep.Format, rep.TimeZone, strings.TrimRight(rep.Text(0), "\n"))
	return 0
}

// BridgeURL is where the bridge's appservice listener answers on this host: its configured
// hostname, or loopback when it listens on every address.
func BridgeURL(cfg *config.Config) string {
	host := cfg.Appservice.Hostname
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(cfg.Appservice.Port))
}

// Request is one import to ask the bridge for.
type Request struct {
	Bridge   string // base URL of the appservice listener
	Token    string // appservice.as_token
	File     string // the export zip
	User     string // optional when one user is logged in
	Chat     string
	TimeZone string // optional
}

// Post sends the export to the bridge and returns its report.
func Post(ctx context.Context, r Request) (*importapi.Report, error) {
	f, err := os.Open(r.File)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() || info.Size() == 0 {
		return nil, fmt.Errorf("%s is not an export zip (empty or a directory)", r.File)
	}
	q := url.Values{"chat": {r.Chat}}
	if r.User != "" {
		q.Set("user", r.User)
	}
	if r.TimeZone != "" {
		q.Set("tz", r.TimeZone)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Bridge+importapi.Path+"?"+q.Encode(), f)
	if err != nil {
		return nil, fmt.Errorf("bad bridge address %q: %w", r.Bridge, err)
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+r.Token)
	// The bridge checks user and chat before it reads the body, so a refused request does not
	// upload a zip of several gigabytes first.
	req.Header.Set("Expect", "100-continue")
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// The whole *url.Error repeats the address with the query; the refusal is all that matters.
		return nil, fmt.Errorf("is the bridge running at %s? Nothing accepts connections there (%w)", r.Bridge, syscall.ECONNREFUSED)
	} else if err != nil {
		return nil, fmt.Errorf("the request to the bridge at %s failed: %w", r.Bridge, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the bridge's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e importapi.ErrorResponse
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			return nil, fmt.Errorf("the bridge at %s answered %s: %.200s", r.Bridge, resp.Status, body)
		}
		msg := e.Error
		if strings.HasPrefix(msg, "user: ") && r.User == "" {
			msg += " (--user)"
		}
		verdict := "refused"
		if resp.StatusCode >= 500 {
			verdict = "failed"
		}
		return nil, fmt.Errorf("the bridge %s the import (%s): %s", verdict, resp.Status, msg)
	}
	var rep importapi.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("the bridge's report is not valid JSON: %w", err)
	}
	return &rep, nil
}

// parseArgs parses the command line, with options allowed after the file.
func parseArgs(fs *flag.FlagSet, args []string) (rest []string, code int, ok bool) {
	rest, err := cliflags.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0, false
	} else if err != nil {
		return nil, exitUsage, false
	}
	return rest, 0, true
}
