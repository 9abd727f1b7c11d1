package wasim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.mau.fi/util/random"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

const maxUploadSize = 64 << 20

// mediaAuth is the media_conn credential. The simulator checks it so that a client that never asked for
// media_conn (or kept a stale one across simulators) is caught.
const mediaAuth = "wasim-media-auth"

func (s *Server) handleMediaConn(node *waBinary.Node) waBinary.Node {
	return iqResult(node, waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth": mediaAuth, "ttl": 300, "auth_ttl": 21600, "max_buckets": 12,
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": mediaHost}}}})
}

func (s *Server) mediaPath(id string) string { return filepath.Join(s.dir, "media", id+".enc") }

func (s *Server) storeMedia(mmsType string, data []byte) (string, error) {
	id := hex.EncodeToString(random.Bytes(16))
	if err := os.MkdirAll(filepath.Join(s.dir, "media"), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(s.mediaPath(id), data, 0o600); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.st.Media[id] = &mediaBlob{Type: mmsType}
	s.mu.Unlock()
	return id, nil
}

func mediaDirectPath(id string) string { return "/v/t62.7118-24/" + id + ".enc?ccb=11-4&oh=sim&oe=0" }

// handleUpload stores an (already encrypted) upload. The token is the base64url SHA-256 of the body,
// which catches a client and server that disagree about what was uploaded.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Query().Get("auth") != mediaAuth {
		http.Error(w, "bad auth", http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/mms/"), "/")
	if len(parts) < 2 {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUploadSize+1))
	if err != nil || len(body) > maxUploadSize {
		http.Error(w, "bad body", http.StatusRequestEntityTooLarge)
		return
	}
	sum := sha256.Sum256(body)
	if token := parts[len(parts)-1]; token != base64.URLEncoding.EncodeToString(sum[:]) &&
		token != base64.RawURLEncoding.EncodeToString(sum[:]) {
		http.Error(w, "hash mismatch", http.StatusBadRequest)
		return
	}
	id, err := s.storeMedia(parts[0], body)
	if err != nil {
		s.log.Error().Err(err).Msg("Failed to store upload")
		http.Error(w, "store failed", http.StatusInternalServerError)
		return
	}
	dp := mediaDirectPath(id)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"url": "https://" + mediaHost + dp, "direct_path": dp, "handle": id, "object_id": id})
}

var mediaIDPattern = regexp.MustCompile(`^/v/[^/]+/([0-9a-f]+)\.enc$`)

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	m := mediaIDPattern.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	_, known := s.st.Media[m[1]]
	outage := s.mediaOutage
	s.mu.Unlock()
	if outage {
		http.Error(w, "media host unavailable", http.StatusServiceUnavailable)
		return
	}
	if !known {
		http.NotFound(w, r)
		return
	}
	data, err := os.ReadFile(s.mediaPath(m[1]))
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, "gone", http.StatusGone)
		return
	} else if err != nil {
		http.Error(w, "read failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// ExpireMedia deletes an uploaded blob, so downloads get 410 as WhatsApp's expired media does.
func (s *Server) ExpireMedia(directPath string) error {
	m := mediaIDPattern.FindStringSubmatch(strings.SplitN(directPath, "?", 2)[0])
	if m == nil {
		return errors.New("not a simulator media path")
	}
	return os.Remove(s.mediaPath(m[1]))
}

// answerMediaRetry answers a media re-upload request. Only the phone holding the media key could really
// re-upload, so the simulator says the media is no longer on the phone.
func (s *Server) answerMediaRetry(c *conn, node *waBinary.Node) {
	rmr, ok := node.GetOptionalChildByTag("rmr")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	notif := s.notificationLocked("mediaretry", types.ServerJID, rmr, waBinary.Node{Tag: "error", Attrs: waBinary.Attrs{"code": 2}})
	notif.Attrs["id"] = node.Attrs["id"]
	if c.loggedIn {
		s.deliverLocked(c.dev, notif)
	}
}

func picturePath(id string) string { return "/pps/t61.24694-24/" + id + ".jpg?oh=sim" }

// handlePictureIQ serves and sets profile and group pictures.
func (s *Server) handlePictureIQ(c *conn, node *waBinary.Node) waBinary.Node {
	target, _ := node.Attrs["target"].(types.JID)
	typ := attrStr(node.Attrs["type"])
	s.mu.Lock()
	defer s.mu.Unlock()
	actor := s.st.Accounts[c.dev.Phone]
	if actor == nil {
		return iqError(node, 401, "not-authorized")
	}
	if target.IsEmpty() {
		target = actor.pnJID()
	}
	if typ == "set" {
		var data []byte
		if pic, ok := node.GetOptionalChildByTag("picture"); ok {
			data, _ = pic.Content.([]byte)
		}
		id, err := s.setPictureLocked(target, actor, data)
		if err != nil {
			return iqError(node, 403, "forbidden")
		}
		return iqResult(node, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"id": id}})
	}
	var pic *picture
	if target.Server == types.GroupServer {
		if g := s.st.Groups[target.User]; g != nil {
			pic = g.Picture
		}
	} else if acct := s.st.accountFor(target); acct != nil {
		pic = acct.Picture
	}
	if pic == nil {
		return iqError(node, 404, "item-not-found")
	}
	req := node.GetChildByTag("picture")
	if attrStr(req.Attrs["id"]) == pic.ID {
		return iqResult(node, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"status": "304"}})
	}
	dp := picturePath(pic.ID)
	return iqResult(node, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{
		"id": pic.ID, "type": attrStr(req.Attrs["type"]), "url": "https://" + mediaHost + dp, "direct_path": dp,
	}})
}

// setPictureLocked changes a user's or group's picture (nil data removes it) and sends picture
// notifications to everyone who could see it.
func (s *Server) setPictureLocked(target types.JID, actor *account, data []byte) (string, error) {
	var pic *picture
	if len(data) > 0 {
		pic = &picture{ID: strings.TrimLeft(hex.EncodeToString(random.Bytes(4)), "0") + "1", Data: data}
	}
	change := waBinary.Node{Tag: "delete", Attrs: waBinary.Attrs{"jid": target}}
	if pic != nil {
		change = waBinary.Node{Tag: "set", Attrs: waBinary.Attrs{"jid": target, "id": pic.ID, "author": actor.pnJID()}}
	}
	if target.Server == types.GroupServer {
		g := s.st.Groups[target.User]
		if g == nil || g.member(actor.Phone) == nil {
			return "", errors.New("not a member")
		}
		g.Picture = pic
		for _, m := range g.Members {
			if acct := s.st.Accounts[m.Phone]; acct != nil {
				s.sendToAccountLocked(acct, devRef{}, s.notificationLocked("picture", target, change), true)
			}
		}
	} else {
		if s.st.accountFor(target) != actor {
			return "", errors.New("cannot set another user's picture")
		}
		actor.Picture = pic
		for _, other := range s.st.Accounts {
			s.sendToAccountLocked(other, devRef{}, s.notificationLocked("picture", actor.pnJID(), change), true)
		}
	}
	if pic == nil {
		return "remove", nil
	}
	return pic.ID, nil
}

func (s *Server) handlePictureDownload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSuffix(filepath.Base(r.URL.Path), ".jpg")
	s.mu.Lock()
	var data []byte
	for _, a := range s.st.Accounts {
		if a.Picture != nil && a.Picture.ID == id {
			data = a.Picture.Data
		}
	}
	for _, g := range s.st.Groups {
		if g.Picture != nil && g.Picture.ID == id {
			data = g.Picture.Data
		}
	}
	s.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(data)
}
