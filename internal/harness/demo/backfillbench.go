package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/internal/harness/devserver"
	"codeberg.org/causeway/causeway/wasim"
)

// rig is what every benchmark runs on: Dendrite, the simulator, the bridge in its own
// process, and a Matrix user whose WhatsApp account the bridge is logged in to.
type rig struct {
	e           *env
	child       *bridgeChild
	mx          *mxUser
	me          *wasim.Phone
	dendritePID int
}

func startRig(ctx context.Context, dir string, opts BenchOptions, p *printer, number string) (_ *rig, err error) {
	mxid := id.NewUserID("bench", "localhost")
	e, err := startEnv(ctx, dir, envOptions{Archive: opts.Archive, Users: []string{string(mxid)}, LogLevel: "info", Database: opts.Database, Encrypted: opts.Encrypted}, p)
	if err != nil {
		return nil, err
	}
	r := &rig{e: e}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.close())
		}
	}()
	if err := e.writeSimEndpoint(); err != nil {
		return nil, err
	}
	if r.child, err = startBridgeChild(ctx, e, opts); err != nil {
		return nil, err
	}
	p.Linef("Bridge process %d started (its log: %s)", r.child.cmd.Process.Pid, filepath.Join(e.dir, logFile))
	if r.mx, err = newMatrixUser(ctx, e, "bench", opts.Encrypted); err != nil {
		return nil, err
	}
	if err := r.mx.openManagementRoom(ctx); err != nil {
		return nil, err
	}
	if r.me, err = e.sim.NewPhone(ctx, e.sim.CreateAccount(number, "Bench User")); err != nil {
		return nil, err
	}
	if err := loginWithQR(ctx, p, r.mx, r.me); err != nil {
		return nil, err
	}
	if r.dendritePID, err = findProcess(e.hs.ConfigPath()); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rig) close() error {
	var err error
	if r.child != nil {
		err = r.child.stop()
	}
	if r.mx != nil {
		r.mx.close()
	}
	r.e.close()
	return err
}

// BackfillResult is what one backfill run measured: from the phone sending its history
// until the last history message was accepted by the homeserver.
type BackfillResult struct {
	Messages, Rooms int
	Wall            time.Duration
	BridgeCPU       time.Duration
	DendriteCPU     time.Duration
}

// RunBackfillBench links a phone whose history holds Chats conversations of PerChat
// messages each, measures how fast the bridge backfills them into new rooms in Dendrite,
// then checks every room holds its history complete and in order.
func RunBackfillBench(ctx context.Context, opts BenchOptions) (res *BackfillResult, err error) {
	p := newPrinter(opts.Out)
	dir := opts.DataDir
	if dir == "" {
		if dir, err = devserver.TempDir("causeway-backfill-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	total := opts.Chats * opts.PerChat
	p.Linef("Backfill benchmark in %s: a history of %d chats x %d messages, archive %s", dir, opts.Chats, opts.PerChat, onOff(opts.Archive))
	r, err := startRig(ctx, dir, opts, p, "4915553000")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, r.close()) }()

	syncs, ghosts, base := r.history(opts.Chats, opts.PerChat)
	if err := r.e.sim.WaitIdle(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	relayedBefore, err := r.relayedToMatrix(ctx)
	if err != nil {
		return nil, err
	}
	bridgeBefore, err := cpuTime(r.child.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	dendriteBefore, err := cpuTime(r.dendritePID)
	if err != nil {
		return nil, err
	}
	p.Linef("The phone sends its history in %d chunks: %d messages", len(syncs), total)
	start := time.Now()
	for _, hs := range syncs {
		if err := r.me.SendHistorySync(ctx, hs); err != nil {
			return nil, err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	err = poll(waitCtx, "the history to reach Dendrite", func() (bool, error) {
		n, err := r.relayedToMatrix(ctx)
		return n-relayedBefore >= total, err
	})
	if err != nil {
		return nil, err
	}
	wall := time.Since(start)
	if err := r.e.sim.WaitIdle(ctx, 300*time.Millisecond); err != nil {
		return nil, err
	}
	bridgeAfter, err := cpuTime(r.child.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	dendriteAfter, err := cpuTime(r.dendritePID)
	if err != nil {
		return nil, err
	}
	res = &BackfillResult{Messages: total, Rooms: opts.Chats, Wall: wall,
		BridgeCPU: bridgeAfter - bridgeBefore, DendriteCPU: dendriteAfter - dendriteBefore}
	p.Linef("Checking that every room holds its history, complete and in order")
	if err := r.checkHistory(ctx, ghosts, opts.PerChat, base); err != nil {
		return nil, err
	}
	perMsg := func(d time.Duration) float64 { return ms(d) / float64(total) }
	p.Block("",
		fmt.Sprintf("Backfill benchmark, archive %s: %d history messages into %d new rooms", onOff(opts.Archive), total, opts.Chats),
		fmt.Sprintf("  throughput    %.0f messages/s into Dendrite (%.1f s from the phone's first history chunk to the last message accepted)",
			float64(total)/wall.Seconds(), wall.Seconds()),
		fmt.Sprintf("  bridge CPU    %.3f ms/message (%s in total)", perMsg(res.BridgeCPU), res.BridgeCPU.Round(10*time.Millisecond)),
		fmt.Sprintf("  Dendrite CPU  %.3f ms/message (%s in total)", perMsg(res.DendriteCPU), res.DendriteCPU.Round(10*time.Millisecond)),
		"  every room checked: all messages there once, in order, with their original timestamps",
		"")
	return res, nil
}

// historyBody is the text of history message n of a chat.
func historyBody(chat, n int) string { return fmt.Sprintf("history %02d %05d", chat, n) }

// history builds the phone's history, a chunk per two chats as the phone sends them, and
// returns the chunks, each chat's ghost and the time of the first message (message n of
// chat c is c*perChat+n seconds later). The contacts exist on the network but need no
// phones: the history is all the bridge sees of them.
func (r *rig) history(chats, perChat int) ([]*waHistorySync.HistorySync, []id.UserID, time.Time) {
	base := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	var syncs []*waHistorySync.HistorySync
	ghosts := make([]id.UserID, chats)
	for c := range chats {
		number := fmt.Sprintf("49155531%02d", c)
		acct := r.e.sim.CreateAccount(number, "History "+number)
		ghosts[c] = r.e.cfg.PuppetUserID(number)
		msgs := make([]wasim.HistoryMessage, perChat)
		for n := range msgs {
			sender := acct.JID
			if n%3 == 2 {
				sender = r.me.JID()
			}
			msgs[n] = wasim.HistoryMessage{ID: types.MessageID(fmt.Sprintf("3EB0HB%02d%010d", c, n)), Sender: sender,
				Text: historyBody(c, n), Time: base.Add(time.Duration(c*perChat+n) * time.Second)}
		}
		if c%2 == 0 {
			syncType := waHistorySync.HistorySync_FULL
			if c == 0 {
				syncType = waHistorySync.HistorySync_INITIAL_BOOTSTRAP
			}
			syncs = append(syncs, &waHistorySync.HistorySync{SyncType: syncType.Enum(), ChunkOrder: proto.Uint32(uint32(len(syncs) + 1))})
		}
		hs := syncs[len(syncs)-1]
		hs.Conversations = append(hs.Conversations, r.me.HistoryConversation(acct.JID, msgs...))
		hs.Progress = proto.Uint32(uint32(100 * (c + 1) / chats))
	}
	return syncs, ghosts, base
}

// relayedToMatrix reads the bridge's count of WhatsApp messages relayed into Matrix.
func (r *rig) relayedToMatrix(ctx context.Context) (int, error) {
	return r.metric(ctx, `causeway_messages_relayed_total{direction="to_matrix",kind="wa_message"}`)
}

// metric reads one series of the bridge's metrics (0 when it has none yet).
func (r *rig) metric(ctx context.Context, series string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.e.cfg.Appservice.Address+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("failed to read the bridge's metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err
		}
	}
	return 0, sc.Err()
}

// checkHistory joins every history room and reads it back: each chat's messages exactly
// once, in order, with their original timestamps.
func (r *rig) checkHistory(ctx context.Context, ghosts []id.UserID, perChat int, base time.Time) error {
	inviters := map[id.UserID]bool{}
	for _, g := range ghosts {
		inviters[g] = true
	}
	rooms := map[id.UserID]id.RoomID{}
	for len(rooms) < len(ghosts) {
		room, err := r.mx.waitInviteFrom(ctx, inviters)
		if err != nil {
			return fmt.Errorf("after %d of %d rooms: %w", len(rooms), len(ghosts), err)
		}
		state, err := r.mx.cli.State(ctx, room)
		if err != nil {
			return err
		}
		var creator id.UserID
		if create := state[event.StateCreate][""]; create != nil {
			creator = create.Sender
		}
		rooms[creator] = room
	}
	for c, g := range ghosts {
		room, ok := rooms[g]
		if !ok {
			return fmt.Errorf("no room was created by %s", g)
		}
		// Dendrite shows a joiner the room's history only once its sync component has
		// seen the join, a moment after the join request returns.
		var lines []historyLine
		waitCtx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := poll(waitCtx, fmt.Sprintf("the history in the room of %s", g), func() (bool, error) {
			var err error
			lines, err = r.mx.readHistory(ctx, room)
			return len(lines) >= perChat, err
		})
		cancel()
		if err != nil {
			return fmt.Errorf("the room %s holds %d history messages, want %d: %w", room, len(lines), perChat, err)
		}
		if len(lines) != perChat {
			return fmt.Errorf("the room %s of %s holds %d history messages, want %d", room, g, len(lines), perChat)
		}
		for n, l := range lines {
			want := historyLine{historyBody(c, n), base.Add(time.Duration(c*perChat+n) * time.Second).UnixMilli()}
			if l != want {
				return fmt.Errorf("the room of %s has %+v where %+v belongs", g, l, want)
			}
		}
	}
	return nil
}

type historyLine struct {
	body string
	ts   int64
}

// readHistory reads the room's history messages, oldest first.
func (u *mxUser) readHistory(ctx context.Context, room id.RoomID) ([]historyLine, error) {
	var lines []historyLine
	from := ""
	for {
		// Backwards from the end: Dendrite takes no empty token going forwards.
		resp, err := u.cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 1000)
		if err != nil {
			return nil, err
		}
		for _, evt := range resp.Chunk {
			if evt.Type != event.EventMessage {
				continue
			}
			_ = evt.Content.ParseRaw(evt.Type)
			if body := evt.Content.AsMessage().Body; strings.HasPrefix(body, "history ") {
				lines = append(lines, historyLine{body, evt.Timestamp})
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	slices.Reverse(lines)
	return lines, nil
}
