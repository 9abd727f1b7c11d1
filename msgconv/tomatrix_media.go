package msgconv

import (
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"maunium.net/go/mautrix/event"
)

// mediaSpec gathers what every media kind shares, so one function builds them all.
type mediaSpec struct {
	msgType  MsgType
	evtType  event.Type
	src      Downloadable
	mimeType string
	size     uint64
	fileName string
	caption  string
	ci       *waE2E.ContextInfo
	info     *FileInfo
	thumb    []byte
	// noun names the media in view-once notices.
	noun string
}

func (c *toMatrix) image(m *waE2E.ImageMessage) error {
	return c.media(mediaSpec{
		msgType: MsgImage, evtType: event.EventMessage, src: m, mimeType: m.GetMimetype(), size: m.GetFileLength(),
		fileName: defaultFileName("image", m.GetMimetype()), caption: m.GetCaption(), ci: m.GetContextInfo(),
		info:  &FileInfo{Width: m.GetWidth(), Height: m.GetHeight()},
		thumb: m.GetJPEGThumbnail(), noun: "photo",
	}, m.GetViewOnce())
}

func (c *toMatrix) video(m *waE2E.VideoMessage, videoNote bool) error {
	info := &FileInfo{Width: m.GetWidth(), Height: m.GetHeight(), Duration: m.GetSeconds() * 1000}
	name := "video"
	if videoNote {
		name = "video-note"
	}
	if m.GetGifPlayback() {
		name = "gif"
		info.IsGIF, info.Loop, info.Autoplay, info.HideControls, info.NoAudio = true, true, true, true, true
	}
	return c.media(mediaSpec{
		msgType: MsgVideo, evtType: event.EventMessage, src: m, mimeType: m.GetMimetype(), size: m.GetFileLength(),
		fileName: defaultFileName(name, m.GetMimetype()), caption: m.GetCaption(), ci: m.GetContextInfo(),
		info: info, thumb: m.GetJPEGThumbnail(), noun: "video",
	}, m.GetViewOnce())
}

func (c *toMatrix) audio(m *waE2E.AudioMessage) error {
	name := "audio"
	if m.GetPTT() {
		name = "voice-message"
	}
	spec := mediaSpec{
		msgType: MsgAudio, evtType: event.EventMessage, src: m, mimeType: m.GetMimetype(), size: m.GetFileLength(),
		fileName: defaultFileName(name, m.GetMimetype()), ci: m.GetContextInfo(),
		info: &FileInfo{Duration: m.GetSeconds() * 1000}, noun: "audio message",
	}
	content, err := c.mediaContent(spec, m.GetViewOnce())
	if err != nil || content == nil {
		return err
	}
	content.Audio = &AudioInfo{Duration: int(m.GetSeconds()) * 1000}
	if m.GetPTT() {
		// Voice notes: MSC3245 makes clients draw a voice bubble, from MSC1767's 0-1024 waveform; WhatsApp's
		// waveform bytes are 0-100.
		content.Voice = &struct{}{}
		if wf := m.GetWaveform(); len(wf) > 0 {
			content.Audio.Waveform = make([]int, len(wf))
			for i, v := range wf {
				content.Audio.Waveform[i] = min(int(v), 100) * 1024 / 100
			}
		}
	}
	return nil
}

func (c *toMatrix) document(m *waE2E.DocumentMessage) error {
	name := m.GetFileName()
	if name == "" {
		name = m.GetTitle()
	}
	if name == "" {
		name = defaultFileName("file", m.GetMimetype())
	}
	return c.media(mediaSpec{
		msgType: MsgFile, evtType: event.EventMessage, src: m, mimeType: m.GetMimetype(), size: m.GetFileLength(),
		fileName: name, caption: m.GetCaption(), ci: m.GetContextInfo(), info: &FileInfo{},
		thumb: m.GetJPEGThumbnail(), noun: "file",
	}, false)
}

func (c *toMatrix) sticker(m *waE2E.StickerMessage) error {
	content, err := c.mediaContent(mediaSpec{
		evtType: event.EventSticker, src: m, mimeType: m.GetMimetype(), size: m.GetFileLength(),
		fileName: defaultFileName("sticker", m.GetMimetype()), ci: m.GetContextInfo(),
		info: &FileInfo{Width: m.GetWidth(), Height: m.GetHeight()}, noun: "sticker",
	}, false)
	if err != nil || content == nil {
		return err
	}
	// A sticker's body is its description; m.sticker has no filename or msgtype.
	if content.Body == content.FileName {
		content.Body = "Sticker"
		if label := m.GetAccessibilityLabel(); label != "" {
			content.Body = validUTF8(label)
		}
	}
	content.FileName = ""
	return nil
}

func (c *toMatrix) media(spec mediaSpec, viewOnce bool) error {
	_, err := c.mediaContent(spec, viewOnce)
	return err
}

// mediaContent adds the event and its transfers; it returns nil content when view-once policy replaced
// the media with a notice.
func (c *toMatrix) mediaContent(spec mediaSpec, viewOnce bool) (*MessageContent, error) {
	if (viewOnce || c.viewOnce) && c.opts.ViewOnce == ViewOnceNotice {
		c.notice("Sent a view-once " + spec.noun + ". Open WhatsApp on your phone to see it.")
		c.res.Note = "view-once media replaced by a notice"
		return nil, nil
	}
	// Names and types come from the sender's phone unchecked (proto2 strings), like the text.
	spec.fileName, spec.mimeType = validUTF8(spec.fileName), validUTF8(spec.mimeType)
	spec.info.MimeType = spec.mimeType
	spec.info.Size = spec.size
	content := c.newContent(spec.msgType)
	content.FileName, content.Info = spec.fileName, spec.info
	if spec.caption != "" {
		if err := c.fillText(content, spec.caption, spec.ci); err != nil {
			return nil, err
		}
	} else {
		content.Body = spec.fileName
		content.Mentions = &content.mentionsBuf
		if err := c.reply(content, spec.ci); err != nil {
			return nil, err
		}
	}
	if viewOnce || c.viewOnce {
		c.res.Note = "view-once media"
	}
	c.res.Action = ActionMessage
	part := c.addEvent(spec.evtType, content)
	c.res.Media = append(c.res.Media, &MediaTransfer{
		Part: part, Source: spec.src, MimeType: spec.mimeType, FileName: spec.fileName, Size: spec.size, content: content,
	})
	if c.opts.InlineThumbnails && len(spec.thumb) > 0 {
		spec.info.ThumbnailInfo = &FileInfo{MimeType: "image/jpeg", Size: uint64(len(spec.thumb))}
		c.res.Media = append(c.res.Media, &MediaTransfer{
			Part: part, Data: spec.thumb, MimeType: "image/jpeg", FileName: "thumbnail.jpg",
			Size: uint64(len(spec.thumb)), content: content, thumbnail: true,
		})
	}
	return content, nil
}

// extensions covers what phones send. mime.ExtensionsByType is not used: it reads the system's mime
// tables, which is I/O and makes names differ between machines.
var extensions = map[string]string{
	"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
	"video/mp4": ".mp4", "video/3gpp": ".3gp", "video/quicktime": ".mov",
	"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr",
	"application/pdf": ".pdf", "text/vcard": ".vcf", "text/plain": ".txt",
}

// defaultFileName names media that WhatsApp sends without a name.
func defaultFileName(base, mimeType string) string {
	mt := mimeType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	if ext, ok := extensions[mt]; ok {
		return base + ext
	}
	// Otherwise a short alphanumeric subtype ("image/heic") is a fair extension.
	_, sub, ok := strings.Cut(mt, "/")
	if !ok || sub == "" || len(sub) > 8 {
		return base
	}
	for i := 0; i < len(sub); i++ {
		if !isASCIIWord(sub[i]) {
			return base
		}
	}
	return base + "." + strings.ToLower(sub)
}
