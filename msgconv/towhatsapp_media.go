package msgconv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/id"
)

// MediaKind is the WhatsApp media class of an upload; it decides the encryption keys' derivation.
type MediaKind int

const (
	MediaImage MediaKind = iota
	MediaVideo
	MediaAudio
	MediaDocument
	MediaSticker
)

// AppInfo returns the HKDF info string of the kind, which is the value of the matching whatsmeow.MediaType
// constant: pass whatsmeow.MediaType(kind.AppInfo()) to Client.Upload.
func (k MediaKind) AppInfo() string {
	switch k {
	case MediaVideo:
		return "WhatsApp Video Keys"
	case MediaAudio:
		return "WhatsApp Audio Keys"
	case MediaDocument:
		return "WhatsApp Document Keys"
	}
	// Stickers are encrypted as images.
	return "WhatsApp Image Keys"
}

// MediaUpload is Matrix media the portal must move to WhatsApp: download URL (or File, decrypting it) from
// the Matrix media repository, upload the bytes with whatsmeow's Client.Upload, then Complete.
type MediaUpload struct {
	Kind     MediaKind
	URL      id.ContentURIString
	File     *EncryptedFile
	MimeType string
	FileName string
	Size     uint64

	timestamp int64
	complete  func(UploadResult, int64)
}

// UploadResult mirrors whatsmeow's UploadResponse field for field, so that msgconv.UploadResult(resp)
// converts one into the other without this package importing the whatsmeow client.
type UploadResult struct {
	URL        string `json:"url"`
	DirectPath string `json:"direct_path"`
	Handle     string `json:"handle"`
	ObjectID   string `json:"object_id"`

	MediaKey      []byte `json:"-"`
	FileEncSHA256 []byte `json:"-"`
	FileSHA256    []byte `json:"-"`
	FileLength    uint64 `json:"-"`
}

// Complete fills the waiting message's media fields from the upload; the message is then ready to send.
func (u *MediaUpload) Complete(res UploadResult) { u.complete(res, u.timestamp) }

func (c *toWA) media(content *MessageContent, kind MediaKind) (*ToWhatsAppResult, error) {
	if content.URL == "" && content.File == nil {
		return nil, sendErr(ErrInvalidContent, "media without url or file")
	}
	info := content.Info
	if info == nil {
		info = &FileInfo{}
	}
	fileName := content.FileName
	if fileName == "" {
		fileName = content.Body
	}
	// Since Matrix 1.10, a body that differs from the file name is a caption.
	var caption string
	var mentioned []string
	if content.FileName != "" && content.Body != content.FileName {
		var err error
		if caption, mentioned, err = c.text(content); err != nil {
			return nil, err
		}
	}
	ci, err := c.contextInfo(content, mentioned)
	if err != nil {
		return nil, err
	}
	up := &MediaUpload{
		Kind: kind, URL: content.URL, File: content.File, MimeType: info.MimeType, FileName: fileName,
		Size: info.Size, timestamp: c.evt.Timestamp / 1000,
	}
	if content.File != nil {
		up.URL = content.File.URL
	}
	msg := &waE2E.Message{}
	mimeType := proto.String(info.MimeType)
	switch kind {
	case MediaImage:
		m := &waE2E.ImageMessage{Mimetype: mimeType, Width: nonZero32(info.Width), Height: nonZero32(info.Height), ContextInfo: ci}
		m.Caption = nonEmptyStr(caption)
		msg.ImageMessage = m
		up.complete = func(r UploadResult, ts int64) {
			m.URL, m.DirectPath, m.MediaKey, m.FileEncSHA256, m.FileSHA256, m.FileLength, m.MediaKeyTimestamp =
				proto.String(r.URL), proto.String(r.DirectPath), r.MediaKey, r.FileEncSHA256, r.FileSHA256, proto.Uint64(r.FileLength), proto.Int64(ts)
		}
	case MediaVideo:
		m := &waE2E.VideoMessage{Mimetype: mimeType, Width: nonZero32(info.Width), Height: nonZero32(info.Height),
			Seconds: nonZero32(info.Duration / 1000), ContextInfo: ci}
		m.Caption = nonEmptyStr(caption)
		if info.IsGIF {
			m.GifPlayback = proto.Bool(true)
		}
		msg.VideoMessage = m
		up.complete = func(r UploadResult, ts int64) {
			m.URL, m.DirectPath, m.MediaKey, m.FileEncSHA256, m.FileSHA256, m.FileLength, m.MediaKeyTimestamp =
				proto.String(r.URL), proto.String(r.DirectPath), r.MediaKey, r.FileEncSHA256, r.FileSHA256, proto.Uint64(r.FileLength), proto.Int64(ts)
		}
	case MediaAudio:
		// Voice messages must be Opus in Ogg to play as voice notes on phones; converting is the portal's
		// job, which is why MimeType is on the upload for it to adjust.
		m := &waE2E.AudioMessage{Mimetype: mimeType, Seconds: nonZero32(info.Duration / 1000), ContextInfo: ci}
		if content.Voice != nil {
			m.PTT = proto.Bool(true)
			if content.Audio != nil && len(content.Audio.Waveform) > 0 {
				m.Waveform = waveformToWhatsApp(content.Audio.Waveform)
			}
		}
		msg.AudioMessage = m
		up.complete = func(r UploadResult, ts int64) {
			m.URL, m.DirectPath, m.MediaKey, m.FileEncSHA256, m.FileSHA256, m.FileLength, m.MediaKeyTimestamp =
				proto.String(r.URL), proto.String(r.DirectPath), r.MediaKey, r.FileEncSHA256, r.FileSHA256, proto.Uint64(r.FileLength), proto.Int64(ts)
		}
	case MediaDocument:
		m := &waE2E.DocumentMessage{Mimetype: mimeType, FileName: proto.String(fileName), Title: proto.String(fileName), ContextInfo: ci}
		m.Caption = nonEmptyStr(caption)
		msg.DocumentMessage = m
		up.complete = func(r UploadResult, ts int64) {
			m.URL, m.DirectPath, m.MediaKey, m.FileEncSHA256, m.FileSHA256, m.FileLength, m.MediaKeyTimestamp =
				proto.String(r.URL), proto.String(r.DirectPath), r.MediaKey, r.FileEncSHA256, r.FileSHA256, proto.Uint64(r.FileLength), proto.Int64(ts)
		}
	case MediaSticker:
		m := &waE2E.StickerMessage{Mimetype: mimeType, Width: nonZero32(info.Width), Height: nonZero32(info.Height), ContextInfo: ci}
		msg.StickerMessage = m
		up.complete = func(r UploadResult, ts int64) {
			m.URL, m.DirectPath, m.MediaKey, m.FileEncSHA256, m.FileSHA256, m.FileLength, m.MediaKeyTimestamp =
				proto.String(r.URL), proto.String(r.DirectPath), r.MediaKey, r.FileEncSHA256, r.FileSHA256, proto.Uint64(r.FileLength), proto.Int64(ts)
		}
	}
	return &ToWhatsAppResult{Action: ActionMessage, Message: msg, Upload: up}, nil
}

func nonZero32(v uint32) *uint32 {
	if v == 0 {
		return nil
	}
	return proto.Uint32(v)
}

func nonEmptyStr(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// waveformToWhatsApp maps MSC1767's 0-1024 samples to WhatsApp's 64 bytes of 0-100.
func waveformToWhatsApp(in []int) []byte {
	const samples = 64
	out := make([]byte, samples)
	for i := range out {
		v := in[i*len(in)/samples]
		out[i] = byte(min(max(v, 0), 1024) * 100 / 1024)
	}
	return out
}

func (c *toWA) location(content *MessageContent) (*ToWhatsAppResult, error) {
	uri := content.GeoURI
	if uri == "" && content.Location != nil {
		uri = content.Location.URI
	}
	lat, lon, err := parseGeoURI(uri)
	if err != nil {
		return nil, sendErr(ErrInvalidContent, err.Error())
	}
	loc := &waE2E.LocationMessage{DegreesLatitude: proto.Float64(lat), DegreesLongitude: proto.Float64(lon)}
	name := content.Body
	if content.Location != nil && content.Location.Description != "" {
		name = content.Location.Description
	}
	if name != "" && !strings.HasPrefix(name, "geo:") && !strings.HasPrefix(name, "Location was shared at geo:") {
		loc.Name = proto.String(name)
	}
	if loc.ContextInfo, err = c.contextInfo(content, nil); err != nil {
		return nil, err
	}
	return &ToWhatsAppResult{Action: ActionMessage, Message: &waE2E.Message{LocationMessage: loc}}, nil
}

// parseGeoURI reads the coordinates of an RFC 5870 geo URI ("geo:lat,lon[,alt][;params]").
func parseGeoURI(uri string) (float64, float64, error) {
	rest, ok := strings.CutPrefix(uri, "geo:")
	if !ok {
		return 0, 0, fmt.Errorf("geo_uri %q is not a geo: URI", uri)
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	parts := strings.Split(rest, ",")
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("geo_uri %q has no longitude", uri)
	}
	lat, err1 := strconv.ParseFloat(parts[0], 64)
	lon, err2 := strconv.ParseFloat(parts[1], 64)
	if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return 0, 0, fmt.Errorf("geo_uri %q has invalid coordinates", uri)
	}
	return lat, lon, nil
}

func (c *toWA) pollStart() (*ToWhatsAppResult, error) {
	p := c.evt.Content.PollStart
	if p == nil || len(p.Answers) == 0 {
		return nil, sendErr(ErrInvalidContent, "poll start without answers")
	}
	if len(p.Answers) > c.opts.maxPollOptions() {
		return nil, sendErr(ErrTooManyPollOptions, fmt.Sprintf("%d options, at most %d", len(p.Answers), c.opts.maxPollOptions()))
	}
	options := make([]*waE2E.PollCreationMessage_Option, len(p.Answers))
	seen := make(map[string]bool, len(p.Answers))
	for i, a := range p.Answers {
		// WhatsApp votes name options by the hash of their text, so two equal texts are one option.
		if seen[a.Text] {
			return nil, sendErr(ErrDuplicatePollOption, a.Text)
		}
		seen[a.Text] = true
		options[i] = &waE2E.PollCreationMessage_Option{OptionName: proto.String(a.Text)}
	}
	selectable := p.MaxSelections
	if selectable < 0 || selectable >= len(options) {
		selectable = 0 // WhatsApp's "any number"
	}
	secret := make([]byte, 32)
	random := c.opts.Random
	if random == nil {
		random = rand.Reader
	}
	if _, err := io.ReadFull(random, secret); err != nil {
		return nil, fmt.Errorf("failed to generate the poll's message secret: %w", err)
	}
	poll := &waE2E.PollCreationMessage{
		Name: proto.String(p.Question.Text), Options: options, SelectableOptionsCount: proto.Uint32(uint32(selectable)),
	}
	var err error
	if poll.ContextInfo, err = c.contextInfo(&c.evt.Content.MessageContent, nil); err != nil {
		return nil, err
	}
	msg := &waE2E.Message{
		PollCreationMessage: poll,
		// Votes are encrypted with keys derived from this secret; without it nobody can vote.
		MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: secret},
	}
	return &ToWhatsAppResult{Action: ActionMessage, Message: msg}, nil
}

func (c *toWA) pollResponse() (*ToWhatsAppResult, error) {
	resp := c.evt.Content.PollResponse
	rel := c.evt.Content.RelatesTo
	if resp == nil || rel == nil {
		return nil, sendErr(ErrInvalidContent, "poll response without answers or poll")
	}
	ref, err := c.target(rel.EventID)
	if err != nil {
		return nil, err
	}
	vote := &waE2E.PollVoteMessage{SelectedOptions: make([][]byte, 0, len(resp.Answers))}
	for _, answer := range resp.Answers {
		hash, ok := c.optionHash(ref, answer)
		if !ok {
			return nil, sendErr(ErrInvalidContent, "unknown poll answer "+answer)
		}
		vote.SelectedOptions = append(vote.SelectedOptions, hash)
	}
	return &ToWhatsAppResult{Action: ActionPollVote, Target: ref, PollVote: vote}, nil
}

// optionHash returns the WhatsApp vote value of a Matrix answer ID: polls bridged from WhatsApp use the
// option hash as the ID; polls started on Matrix keep their own IDs, which the portal maps to names.
func (c *toWA) optionHash(ref *MessageRef, answer string) ([]byte, bool) {
	for _, o := range ref.PollOptions {
		if o.ID == answer {
			sum := sha256.Sum256([]byte(o.Name))
			return sum[:], true
		}
	}
	if len(answer) == sha256.Size*2 {
		if b, err := hex.DecodeString(answer); err == nil {
			return b, true
		}
	}
	return nil, false
}
