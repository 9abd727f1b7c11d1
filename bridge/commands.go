package bridge

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/internal/buildinfo"
)

// commandEvent is one command a user sent to the bot.
type commandEvent struct {
	roomID       id.RoomID
	eventID      id.EventID
	sender       id.UserID
	level        config.Level
	isManagement bool
	text         string // without any prefix

	name string
	args []string
}

// command is one bot command. Handlers return the Markdown reply.
type command struct {
	name     string
	aliases  []string
	args     string // usage after the name, for help
	help     string
	minLevel config.Level
	handler  func(ctx context.Context, ce *commandEvent) string
}

type commandSet struct {
	b      *Bridge
	byName map[string]*command
	list   []*command
}

func newCommandSet(b *Bridge) *commandSet {
	cs := &commandSet{b: b, byName: map[string]*command{}}
	cs.add(&command{name: "help", help: "Show this list.", minLevel: config.LevelRelay, handler: cs.help})
	cs.add(&command{name: "version", help: "Show the bridge's version.", minLevel: config.LevelRelay,
		handler: func(context.Context, *commandEvent) string { return buildinfo.Get().String() }})
	cs.add(&command{name: "ping", aliases: []string{"status"}, help: "Show your WhatsApp login state: connected, last seen, device.",
		minLevel: config.LevelUser, handler: b.cmdPing})
	return cs
}

func (cs *commandSet) add(c *command) {
	cs.list = append(cs.list, c)
	cs.byName[c.name] = c
	for _, a := range c.aliases {
		cs.byName[a] = c
	}
}

func (cs *commandSet) run(ctx context.Context, ce *commandEvent) {
	fields := strings.Fields(ce.text)
	if len(fields) == 0 {
		cs.b.reply(ctx, ce.roomID, "Send `help` to see what I can do.")
		return
	}
	ce.name, ce.args = strings.ToLower(fields[0]), fields[1:]
	cmd, ok := cs.byName[ce.name]
	if !ok {
		reply := fmt.Sprintf("Unknown command `%s`.", ce.name)
		if guess := cs.closest(ce.name, ce.level); guess != "" {
			reply += fmt.Sprintf(" Did you mean `%s`?", guess)
		}
		cs.b.reply(ctx, ce.roomID, reply+" Send `help` for the list of commands.")
		return
	}
	if ce.level < cmd.minLevel {
		cs.b.reply(ctx, ce.roomID, fmt.Sprintf("Sorry, `%s` needs the %s permission level, and you have %s.",
			cmd.name, cmd.minLevel, ce.level))
		return
	}
	cs.b.reply(ctx, ce.roomID, cmd.handler(ctx, ce))
}

func (cs *commandSet) help(_ context.Context, ce *commandEvent) string {
	var sb strings.Builder
	sb.WriteString("**Commands**")
	if !ce.isManagement {
		fmt.Fprintf(&sb, " (prefix them with `%s` outside your management room)", commandPrefix)
	}
	sb.WriteString("\n\n")
	for _, c := range cs.list {
		if ce.level < c.minLevel {
			continue
		}
		usage := c.name
		if c.args != "" {
			usage += " " + c.args
		}
		fmt.Fprintf(&sb, "* `%s` - %s", usage, c.help)
		if len(c.aliases) > 0 {
			fmt.Fprintf(&sb, " (also `%s`)", strings.Join(c.aliases, "`, `"))
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// closest suggests the known command nearest to a mistyped one, if any is near enough.
func (cs *commandSet) closest(name string, level config.Level) string {
	names := make([]string, 0, len(cs.byName))
	for n, c := range cs.byName {
		if level >= c.minLevel {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (b *Bridge) cmdPing(ctx context.Context, ce *commandEvent) string {
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil {
		return "Sorry, I could not load your account: " + err.Error()
	} else if u == nil {
		return "You are not logged in to WhatsApp. Send `login` to link your phone."
	}
	return u.status()
}
