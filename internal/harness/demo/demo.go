package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/bridge"
	"codeberg.org/causeway/causeway/internal/harness/devserver"
	"codeberg.org/causeway/causeway/internal/harness/mxcrypto"
	"codeberg.org/causeway/causeway/wasim"
)

// Options configure one demo run.
type Options struct {
	// DataDir keeps everything the demo writes; empty means a temporary directory that is
	// removed at the end.
	DataDir string
	// Once ends the demo after the scenario instead of waiting for ctx to end.
	Once bool
	// Out receives the story of the demo, line by line.
	Out io.Writer
	// SentFiles, when set, hears of every file the scenario sends from Matrix, with its
	// bytes, so that a caller can look for them elsewhere (the demo test, in an archive export).
	SentFiles func(SentFile)
	// Plaintext plays the scenario in unencrypted portals. By default the bridge creates its
	// portals end-to-end encrypted and the Matrix user's own device encrypts and decrypts, as
	// in most government Matrix deployments; a build without `-tags goolm` has no encryption
	// and plays in plaintext, saying so.
	Plaintext bool
}

// noCryptoNotice is the one line a build without encryption prints instead of encrypting.
const noCryptoNotice = "This build has no Matrix encryption (built without -tags goolm), so the portals are unencrypted; " +
	"for encrypted ones: go run -tags goolm ./cmd/causeway-demo --once"

// demoUser is the Matrix user the demo creates for the newcomer.
const demoUser = "demo"

// Run plays the demo. It returns nil only if every step of the scenario was verified on
// the other side; with Once unset it then waits until ctx ends.
func Run(ctx context.Context, opts Options) (err error) {
	p := newPrinter(opts.Out)
	dir := opts.DataDir
	if dir == "" {
		if dir, err = devserver.TempDir("causeway-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("failed to resolve the data directory: %w", err)
	}
	p.Linef("Causeway demo: everything runs on this machine, in %s", dir)
	encrypted := !opts.Plaintext
	if encrypted && !mxcrypto.Available {
		p.Linef("%s", noCryptoNotice)
		encrypted = false
	}
	mxid := id.NewUserID(demoUser, "localhost")
	e, err := startEnv(ctx, dir, envOptions{Archive: true, Users: []string{string(mxid)}, Encrypted: encrypted}, p)
	if err != nil {
		return err
	}
	defer e.close()

	p.Linef("Starting the bridge (its log: %s)", filepath.Join(dir, logFile))
	br, err := bridge.New(e.cfg, e.log, bridge.Options{ConfigureWhatsApp: e.sim.ConfigureClient, WhatsAppHTTP: e.sim.HTTPClient()})
	if err != nil {
		return err
	}
	if err := br.Start(ctx); err != nil {
		return fmt.Errorf("failed to start the bridge: %w", err)
	}
	defer func() {
		p.Linef("Stopping the bridge")
		err = errors.Join(err, br.Stop(context.Background()))
	}()

	mx, err := newMatrixUser(ctx, e, demoUser, encrypted)
	if err != nil {
		return err
	}
	defer mx.close()
	p.Linef("Created the Matrix user %s (password %s) and opened a direct chat with the bridge bot %s", mx.cli.UserID, mx.password, mx.bot)
	if encrypted {
		p.Linef("The user's client is an encryption device, as an Element login is: the rooms are end-to-end encrypted, and every check below decrypts")
	}
	if err := mx.openManagementRoom(ctx); err != nil {
		return err
	}
	s, err := newScenario(ctx, e, mx)
	if err != nil {
		return err
	}
	s.sentFiles = opts.SentFiles
	if err := loginWithQR(ctx, p, mx, s.me); err != nil {
		return err
	}
	scenarioErr := s.run(ctx, p)
	printHowToLook(p, e, mx, opts.DataDir != "", scenarioErr)
	if scenarioErr != nil || opts.Once {
		return scenarioErr
	}
	p.Linef("The demo keeps running; press Ctrl-C to stop it")
	<-ctx.Done()
	return nil
}

// newMatrixUser registers a Matrix account through the homeserver's shared secret, with a
// password a person can type into any client; with encrypted, its login is an encryption
// device, as an Element login is.
func newMatrixUser(ctx context.Context, e *env, localpart string, encrypted bool) (*mxUser, error) {
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	password := localpart + "-" + hex.EncodeToString(buf)
	cli, err := e.hs.RegisterUser(ctx, localpart, password, false)
	if err != nil {
		return nil, err
	}
	u := &mxUser{cli: cli, password: password, bot: e.cfg.BotUserID()}
	if encrypted {
		if u.crypto, err = mxcrypto.New(ctx, cli, e.log); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// close stops the user's encryption device.
func (u *mxUser) close() {
	if u.crypto != nil {
		u.crypto.Close()
	}
}

// newScenario creates the WhatsApp accounts of the story, each with a simulated phone.
func newScenario(ctx context.Context, e *env, mx *mxUser) (*scenario, error) {
	s := &scenario{cfg: e.cfg, sim: e.sim, mx: mx}
	for _, pp := range []struct {
		who   person
		phone **wasim.Phone
	}{{you, &s.me}, {anna, &s.anna}, {ben, &s.ben}, {clara, &s.clara}} {
		phone, err := e.sim.NewPhone(ctx, e.sim.CreateAccount(pp.who.number, pp.who.pushName))
		if err != nil {
			return nil, fmt.Errorf("failed to start the simulated phone of %s: %w", pp.who.pushName, err)
		}
		*pp.phone = phone
	}
	return s, nil
}

// loginWithQR links the bridge to the demo user's WhatsApp account the way a person does:
// `login` in the management room, and the phone scans the QR code the bot shows.
func loginWithQR(ctx context.Context, p *printer, mx *mxUser, phone *wasim.Phone) error {
	p.Linef("Logging the bridge in to WhatsApp as +%s: sending `login` to the bot", phone.JID().User)
	body, err := mx.command(ctx, "login", "QR code: ")
	if err != nil {
		return err
	}
	code := strings.TrimSpace(body[strings.Index(body, "QR code: ")+len("QR code: "):])
	p.Linef("The bot shows a QR code; the simulated phone of +%s scans it", phone.JID().User)
	started := time.Now()
	if err := phone.ScanQR(ctx, code); err != nil {
		return err
	}
	done, err := mx.waitBot(ctx, started, "Successfully logged in")
	if err != nil {
		return err
	}
	if !strings.Contains(done, "+"+phone.JID().User) {
		return fmt.Errorf("the bot reports a login, but not as +%s: %q", phone.JID().User, done)
	}
	p.Linef("      ok: the bot says %q", firstLine(done))
	return nil
}

// printHowToLook ends the story. kept says whether the data directory outlives the demo
// (--data): checking the archive is only worth suggesting for a directory that is still there
// once the demo has stopped, so without --data it says how to keep one instead.
func printHowToLook(p *printer, e *env, mx *mxUser, kept bool, scenarioErr error) {
	verdict := "Every step was verified on the other side."
	if scenarioErr != nil {
		verdict = "The scenario FAILED: " + scenarioErr.Error()
	}
	dataDir := "Data directory: " + e.dir
	archive := []string{
		"Check the records archive once the demo has stopped:",
		"  causeway archive verify -c " + e.cfgPath,
	}
	if !kept {
		dataDir += "   (removed when the demo stops)"
		archive = []string{
			"To check the records archive afterwards, run the demo with --data DIR to keep it, then:",
			"  causeway archive verify -c DIR/" + configFile,
		}
	}
	// A client logged in after the demo is a new device: the bridge's Megolm sessions reach it
	// for what is relayed from then on (mautrix shares a new session when a member's devices
	// change), not for what was said before.
	portals := "  portals     unencrypted"
	if mx.crypto != nil {
		portals = "  portals     end-to-end encrypted; your client is a new device, which can read what is relayed after it logs in"
	}
	lines := []string{
		"",
		verdict,
		"",
		"Look for yourself with any Matrix client (Element: \"Sign in\", edit the homeserver):",
		"  homeserver  " + e.hs.URL,
		"  user        " + string(mx.cli.UserID) + "   (or just \"" + demoUser + "\")",
		"  password    " + mx.password,
		portals,
		"",
		dataDir,
		"  config      " + e.cfgPath,
		"  bridge log  " + filepath.Join(e.dir, logFile),
		"  Dendrite    " + filepath.Join(e.dir, dendriteDir),
	}
	lines = append(lines, archive...)
	p.Block(append(lines, "")...)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
