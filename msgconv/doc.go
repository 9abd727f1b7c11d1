// Package msgconv is the translation core between WhatsApp messages (whatsmeow's waE2E protobufs) and
// Matrix event content.
//
// It is pure on purpose: the relay path must be testable and benchmarkable without a bridge around it.
// Anything it needs to know comes in through the small interfaces in resolver.go; anything that must happen
// afterwards (download or upload media, redact an event, encrypt a poll vote, change a room's disappearing
// timer) comes back as data in the result for the portal to carry out. It never logs: it returns errors.
//
// WhatsApp to Matrix, in the portal:
//
//	res, err := msgconv.ToMatrix(ctx, &evt.Info, evt.Message, resolver, opts)
//	for _, m := range res.Media { /* download m.Source (or take m.Data), upload, m.Complete(mxc) */ }
//	for _, r := range res.Redactions { /* redact r.EventID */ }
//	for _, e := range res.Events { /* send e.Type with e.Content, store (msg ID, e.PartID) -> event ID */ }
//
// Matrix to WhatsApp:
//
//	content, err := msgconv.DecodeContent(evt.Content.VeryRaw) // or DecodeEvent on the raw event
//	res, err := msgconv.ToWhatsApp(ctx, &msgconv.MatrixEvent{Type: ..., Content: content}, chat, resolver, opts)
//	if res.Upload != nil { /* download res.Upload.URL, whatsmeow Upload, res.Upload.Complete(msgconv.UploadResult(resp)) */ }
//	if res.PollVote != nil { /* whatsmeow EncryptPollVote against res.Target, send */ } else { /* send res.Message */ }
//
// A *SendError from ToWhatsApp is content WhatsApp cannot take, worded for the Matrix user; other errors
// are lookup failures worth retrying.
//
// The hot paths (plain text, replies, mentions, formatting, reactions, edits) scan their input once, skip
// markup handling when the text has no markup rune, build typed content structs that encoding/json
// marshals without map merging, and decode each Matrix event once.
package msgconv
