package bridge_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// relayErrors reads the bridge's count of failed relay attempts towards WhatsApp.
func relayErrors(t *testing.T, address string) int {
	t.Helper()
	return metricSum(t, address, func(line string) bool {
		return strings.HasPrefix(line, "causeway_relay_errors_total{") && strings.Contains(line, `direction="to_whatsapp"`)
	})
}

// metricSum adds up the values of the bridge's /metrics lines that match.
func metricSum(t *testing.T, address string, match func(line string) bool) int {
	t.Helper()
	resp, err := http.Get(address + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !match(line) {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += int(n)
	}
	return total
}

// waitNotice waits for the bridge bot's notice replying to the Matrix event about.
func waitNotice(t *testing.T, f *dmFixture, about id.EventID) string {
	t.Helper()
	bot := lastBridge.cfg.BotUserID()
	evt := waitEvent(t, f.alice.mx, f.room, bot, "failure notice", func(e *event.Event) bool {
		inReply, _ := relatesTo(e)["m.in_reply_to"].(map[string]any)
		return e.Type == event.EventMessage && inReply["event_id"] == string(about)
	})
	return evt.Content.AsMessage().Body
}

// TestBrokenMediaFailsFast: media that is not on the homeserver will not be there on the
// next attempt either. The event fails on its first attempt with a notice, instead of being
// retried while every later message of the chat waits behind it.
func TestBrokenMediaFailsFast(t *testing.T) {
	f := newDM(t, "broken_media", "4915551901", "4915551902")
	ctx := context.Background()
	mx, room := f.alice.mx, f.room
	before := relayErrors(t, lastBridge.cfg.Appservice.Address)

	broken := &event.MessageEventContent{MsgType: event.MsgImage, Body: "holiday.jpg",
		URL: id.ContentURIString("mxc://localhost/thisfiledoesnotexist"), Info: &event.FileInfo{MimeType: "image/jpeg", Size: 1234}}
	resp, err := mx.SendMessageEvent(ctx, room, event.EventMessage, broken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mx.SendText(ctx, room, "after the broken image"); err != nil {
		t.Fatal(err)
	}
	waitWAText(t, f.contact, "after the broken image")
	notice := waitNotice(t, f, resp.EventID)
	if !strings.Contains(notice, "image “holiday.jpg”") || !strings.Contains(notice, "not on the homeserver") ||
		strings.Contains(notice, "M_NOT_FOUND") {
		t.Errorf("notice = %q, want it to name the image and say in words that its file is not on the homeserver", notice)
	}
	if n := relayErrors(t, lastBridge.cfg.Appservice.Address) - before; n != 1 {
		t.Errorf("the broken image took %d failed attempts, want 1 (a missing file is not retried)", n)
	}
}
