package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"go.mau.fi/util/exhttp"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/importapi"
	"codeberg.org/causeway/causeway/portal"
)

// maxImportZip bounds the export an import request may upload; WhatsApp's own exports of a
// chat with media stay well below it.
const maxImportZip = 8 << 30

// The provisioning API is for the operator's tools on the bridge's host (`causeway import`).
// It authenticates with the appservice's as_token: whoever can read the config can act as
// the bridge anyway, so it needs no secret of its own.
func (b *Bridge) mountProvisioning(mux *http.ServeMux) {
	mux.HandleFunc("POST "+importapi.Path, b.handleProvisionImport)
	mux.HandleFunc("GET "+StatusPath, b.handleProvisionStatus)
}

// inputError is a request the bridge cannot carry out as asked (400), as opposed to a
// failure of the bridge itself (500).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

func (b *Bridge) checkProvisionToken(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		mautrix.MMissingToken.WithMessage("Missing the Authorization: Bearer header; provisioning takes appservice.as_token from the bridge's config").Write(w)
		return false
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(b.cfg.Appservice.ASToken)) != 1 {
		b.log.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("Rejected a provisioning request with a wrong token")
		mautrix.MUnknownToken.WithMessage("Wrong token: provisioning takes appservice.as_token from the bridge's config").Write(w)
		return false
	}
	return true
}

func (b *Bridge) handleProvisionImport(w http.ResponseWriter, r *http.Request) {
	if !b.checkProvisionToken(w, r) {
		return
	}
	// A client that goes away ends the import: what was sent stays, and importing the
	// export again finishes it. So does a bridge that is stopping.
	ctx, cancel := b.jobs.until(r.Context())
	defer cancel()
	log := b.log.With().Str("component", "provisioning").Str("remote", r.RemoteAddr).Logger()
	ctx = log.WithContext(ctx)
	rep, err := b.provisionImport(ctx, r)
	var bad *inputError
	switch {
	case errors.As(err, &bad):
		log.Info().Str("problem", bad.msg).Msg("Refused an import request")
		mautrix.MInvalidParam.WithMessage("%s", bad.msg).Write(w)
	case errors.Is(err, errNotAnExport):
		mautrix.MInvalidParam.WithMessage("%s", err.Error()).Write(w)
	case errors.Is(err, errTooLarge):
		mautrix.MTooLarge.WithMessage("%s", err.Error()).Write(w)
	case errors.Is(err, errSlowBody):
		log.Warn().Err(err).Msg("Gave up on an import whose upload arrived too slowly")
		writeSlowBody(w)
	case errors.Is(err, errStopping):
		mautrix.RespError{ErrCode: "M_UNAVAILABLE", Err: err.Error(), StatusCode: http.StatusServiceUnavailable}.Write(w)
	case err != nil:
		mautrix.MUnknown.WithMessage("%s", err.Error()).Write(w)
	default:
		exhttp.WriteJSONResponse(w, http.StatusOK, rep)
	}
}

// errStopping refuses imports while the bridge shuts down (503: try again later).
var errStopping = errors.New("the bridge is shutting down; try again once it is back")

// provisionImport checks the request, saves the zip and runs the import. It reads the body
// only once the parameters are good: a client sending "Expect: 100-continue" then uploads
// nothing for a request that is refused anyway.
func (b *Bridge) provisionImport(ctx context.Context, r *http.Request) (*importapi.Report, error) {
	select {
	case <-b.stopping:
		return nil, errStopping
	default:
	}
	q := r.URL.Query()
	u, err := b.provisionUser(ctx, q.Get("user"))
	if err != nil {
		return nil, err
	}
	p, err := b.provisionPortal(ctx, u, q.Get("chat"))
	if err != nil {
		return nil, err
	}
	loc, err := importapi.Location(q.Get("tz"))
	if err != nil {
		return nil, badInput("tz: %v", err)
	}
	zip, size, err := spoolBody(r.Body)
	if err != nil {
		return nil, err
	}
	defer dropSpool(zip)
	return b.importExport(ctx, u.MXID(), p, zip, size, loc)
}

// provisionUser finds the logged-in user an import is for; with no user named, the only
// logged-in one.
func (b *Bridge) provisionUser(ctx context.Context, param string) (*User, error) {
	if param == "" {
		rows, err := b.db.Users.ListLoggedIn(ctx)
		if err != nil {
			return nil, err
		}
		switch len(rows) {
		case 0:
			return nil, badInput("user: nobody is logged in to WhatsApp on this bridge")
		case 1:
			param = string(rows[0].MXID)
		default:
			names := make([]string, len(rows))
			for i, row := range rows {
				names[i] = string(row.MXID)
			}
			return nil, badInput("user: %d users are logged in to WhatsApp (%s); name the one the chat belongs to", len(rows), strings.Join(names, ", "))
		}
	}
	mxid := id.UserID(param)
	if _, _, err := mxid.Parse(); err != nil {
		return nil, badInput("user: %q is not a Matrix user ID like @alice:%s", param, b.cfg.Homeserver.Domain)
	}
	if level := b.cfg.Permissions.LevelFor(mxid); level == config.LevelNone {
		return nil, badInput("user: %s may not use this bridge (see permissions in its config)", mxid)
	} else if level < config.LevelUser {
		return nil, badInput("user: %s has the %s permission level; importing takes %s, as the bot's import command does", mxid, level, config.LevelUser)
	}
	u, err := b.getUser(ctx, mxid, false)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, badInput("user: %s has never used this bridge", mxid)
	}
	u.mu.Lock()
	loggedIn := u.row.WADevice != ""
	u.mu.Unlock()
	if !loggedIn {
		return nil, badInput("user: %s is not logged in to WhatsApp", mxid)
	}
	return u, nil
}

// provisionPortal finds the room of u's chat. It does not create one: an import into a
// mistyped number would otherwise make a room and a ghost for a stranger.
func (b *Bridge) provisionPortal(ctx context.Context, u *User, chat string) (*portal.Portal, error) {
	if chat == "" {
		return nil, badInput("chat: missing; give the chat's WhatsApp JID (4917612345678@s.whatsapp.net, 120363000000000001@g.us) or phone number")
	}
	jid, err := parseChat(chat)
	if err != nil {
		return nil, err
	}
	key := u.portalKey(ctx, jid)
	row, err := b.db.Portals.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if row == nil || row.MXID == "" {
		return nil, badInput("chat: %s has no room for %s yet; it gets one with its first message, or with the bot's start-chat command", key.ChatJID, u.MXID())
	}
	return b.portals.Get(ctx, key, jid.Server == types.GroupServer)
}

// parseChat reads a chat as an operator may give it: a JID, or a phone number for a
// direct chat.
func parseChat(s string) (types.JID, error) {
	if number := strings.ReplaceAll(s, " ", ""); phoneNumber.MatchString(number) {
		return types.NewJID(strings.TrimPrefix(number, "+"), types.DefaultUserServer), nil
	}
	jid, err := types.ParseJID(s)
	if err != nil || jid.User == "" || (jid.Server != types.DefaultUserServer && jid.Server != types.GroupServer && jid.Server != types.HiddenUserServer) {
		return types.JID{}, badInput("chat: %q is not a WhatsApp chat; give a JID like 4917612345678@s.whatsapp.net or 120363000000000001@g.us, or a phone number", s)
	}
	return jid.ToNonAD(), nil
}

// spoolBody saves the uploaded zip to a temporary file: the parser needs random access, and
// an export with years of photos does not belong in memory.
func spoolBody(body io.Reader) (*os.File, int64, error) {
	f, n, err := spoolZip(body)
	switch {
	case errors.Is(err, errZipEmpty):
		err = badInput("the request body is empty: send the export zip as the body")
	case errors.Is(err, errZipTooLarge):
		err = badInput("the zip is larger than %d GiB", maxImportZip>>30)
	}
	return f, n, err
}

var (
	errZipEmpty    = errors.New("the zip is empty")
	errZipTooLarge = fmt.Errorf("%w: the zip is larger than %d GiB", errTooLarge, maxImportZip>>30)
)

// spoolZip saves an export zip to a temporary file, at most maxImportZip bytes of it. The
// caller closes and removes the file.
func spoolZip(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "causeway-import-*.zip")
	if err != nil {
		return nil, 0, fmt.Errorf("failed to store the zip: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, maxImportZip+1))
	switch {
	case err != nil:
		err = fmt.Errorf("failed to receive the zip: %w", err)
	case n == 0:
		err = errZipEmpty
	case n > maxImportZip:
		err = errZipTooLarge
	}
	if err != nil {
		dropSpool(f)
		return nil, 0, err
	}
	return f, n, nil
}

// dropSpool closes and removes a spooled zip.
func dropSpool(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}
