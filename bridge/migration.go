package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/portal"
	"codeberg.org/causeway/causeway/puppet"
)

// directory maps WhatsApp numbers (digits only) to the organisation's Matrix accounts.
type directory map[string]id.UserID

// loadDirectory reads migration.directory_file: CSV lines "phone,matrix_id" (a header line
// is allowed) or a JSON object {"+4917...": "@x:example.gov"}. Errors name the line.
func loadDirectory(path string) (directory, error) {
	dir := directory{}
	if path == "" {
		return dir, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("migration.directory_file: %w", err)
	}
	add := func(where, phone, mxid string) error {
		number := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, phone)
		userID := id.UserID(strings.TrimSpace(mxid))
		if _, _, err := userID.Parse(); err != nil || !strings.HasPrefix(string(userID), "@") {
			return fmt.Errorf("%s %s: %q is not a Matrix user ID", path, where, mxid)
		}
		if len(number) < 7 {
			return fmt.Errorf("%s %s: %q is not a phone number", path, where, phone)
		}
		dir[number] = userID
		return nil
	}
	if strings.HasSuffix(path, ".json") {
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: not a JSON object of phone numbers to Matrix IDs: %w", path, err)
		}
		for phone, mxid := range m {
			if err := add("entry "+phone, phone, mxid); err != nil {
				return nil, err
			}
		}
		return dir, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		phone, mxid, ok := strings.Cut(text, ",")
		if !ok {
			return nil, fmt.Errorf("%s line %d: want phone,matrix_id", path, line)
		}
		if line == 1 && !strings.ContainsAny(phone, "0123456789") {
			continue // header
		}
		if err := add(fmt.Sprintf("line %d", line), phone, mxid); err != nil {
			return nil, err
		}
	}
	return dir, sc.Err()
}

func (b *Bridge) addMigrationCommands(cs *commandSet) {
	cs.add(&command{name: "migrate", minLevel: config.LevelUser, handler: b.cmdMigrate,
		help: "In a chat with a contact who is on Matrix: open a direct Matrix chat with them. In a group: invite the members who are on Matrix."})
	cs.add(&command{name: "migration-report", minLevel: config.LevelUser, handler: b.cmdMigrationReport,
		help: "Show which contacts and groups are reachable on Matrix, and who is still WhatsApp-only."})
}

// offerMigration points out, in a new DM portal, that the contact is also on Matrix.
func (b *Bridge) offerMigration(ctx context.Context, p *portal.Portal) {
	if p.IsGroup() {
		return
	}
	u, err := b.getUser(ctx, p.Key().Receiver, false)
	if err != nil || u == nil {
		return
	}
	acct, ok := b.colleagues.find(ctx, u, p.Chat())
	if !ok {
		return
	}
	b.reply(ctx, p.RoomID(), fmt.Sprintf("This contact is also on Matrix as %s. Send `%s migrate` here to open a direct Matrix chat with them.",
		acct.describe(), commandPrefix))
}

func (b *Bridge) cmdMigrate(ctx context.Context, ce *commandEvent) string {
	p, err := b.portals.ByRoom(ctx, ce.roomID)
	if err != nil || p == nil || p.Key().Receiver != ce.sender {
		return fmt.Sprintf("Send `%s migrate` in one of your WhatsApp chats.", commandPrefix)
	}
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil {
		return "You are not logged in."
	}
	if !p.IsGroup() {
		acct, ok := b.colleagues.find(ctx, u, p.Chat())
		if !ok {
			return "This contact was not found on Matrix (neither in the organisation's directory nor, where enabled, in the homeserver's user directory)."
		}
		mxid := acct.UserID
		resp, err := b.botCreateRoom(ctx, &mautrix.ReqCreateRoom{
			Visibility: "private", Preset: "trusted_private_chat", IsDirect: true,
			Invite: []id.UserID{ce.sender, mxid},
			PowerLevelOverride: &event.PowerLevelsEventContent{
				Users: map[id.UserID]int{b.bot.UserID: 100, ce.sender: 100, mxid: 100},
			},
		})
		if err != nil {
			return "Could not create the Matrix chat: " + err.Error()
		}
		// The bot only set the room up; the chat belongs to the two of them.
		if _, err := b.bot.LeaveRoom(ctx, resp.RoomID); err != nil {
			b.log.Warn().Err(err).Msg("The bot could not leave the migrated chat")
		}
		return fmt.Sprintf("Invited you and %s to a new direct Matrix chat (%s). This WhatsApp chat stays as it is.", mxid, resp.RoomID)
	}
	wa, ok := b.WhatsApp(ce.sender)
	if !ok {
		return "You are not connected to WhatsApp right now."
	}
	info, err := wa.GroupInfo(ctx, p.Chat())
	if err != nil {
		return "Could not read the group's members: " + err.Error()
	}
	var invited, failed []string
	for _, part := range info.Participants {
		jid := puppet.PreferPhone(part.JID, part.PhoneNumber)
		acct, ok := b.colleagues.find(ctx, u, jid)
		if !ok || acct.UserID == ce.sender {
			continue
		}
		mxid := acct.UserID
		if _, err := b.bot.InviteUser(ctx, p.RoomID(), &mautrix.ReqInviteUser{UserID: mxid, Reason: "Also in the WhatsApp group"}); err != nil {
			failed = append(failed, string(mxid))
		} else {
			invited = append(invited, string(mxid))
		}
	}
	if len(invited)+len(failed) == 0 {
		return "Nobody else in this group was found on Matrix."
	}
	reply := fmt.Sprintf("Invited %d member(s) who are on Matrix: %s.", len(invited), strings.Join(invited, ", "))
	if len(failed) > 0 {
		reply += " Could not invite: " + strings.Join(failed, ", ") + "."
	}
	return reply
}

func (b *Bridge) cmdMigrationReport(ctx context.Context, ce *commandEvent) string {
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil {
		return "You are not logged in."
	}
	contacts, err := u.contactList(ctx, "")
	if err != nil {
		return "Sorry: " + err.Error()
	}
	var onMatrix, waOnly []string
	for _, c := range contacts {
		if acct, ok := b.colleagues.find(ctx, u, c.jid); ok {
			onMatrix = append(onMatrix, fmt.Sprintf("* %s (+%s): on Matrix as %s", c.name, c.jid.User, acct.describe()))
		} else {
			waOnly = append(waOnly, fmt.Sprintf("* %s (+%s): WhatsApp only", c.name, c.jid.User))
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "**Contacts:** %d of %d reachable on Matrix\n\n", len(onMatrix), len(contacts))
	for _, l := range append(onMatrix, waOnly...) {
		sb.WriteString(l + "\n")
	}
	portals, err := b.db.Portals.ListByReceiver(ctx, ce.sender)
	if err == nil {
		wa, connected := b.WhatsApp(ce.sender)
		var groups []string
		for _, row := range portals {
			if !row.IsGroup {
				continue
			}
			line := fmt.Sprintf("* %s: ", row.Name)
			jid, err := types.ParseJID(row.ChatJID)
			if !connected || err != nil {
				groups = append(groups, line+"members unknown while disconnected")
				continue
			}
			info, err := wa.GroupInfo(ctx, jid)
			if err != nil {
				groups = append(groups, line+"members unknown: "+err.Error())
				continue
			}
			reachable := 0
			for _, part := range info.Participants {
				j := puppet.PreferPhone(part.JID, part.PhoneNumber)
				if _, ok := b.colleagues.find(ctx, u, j); ok {
					reachable++
				}
			}
			groups = append(groups, fmt.Sprintf("%s%d of %d members reachable on Matrix", line, reachable, len(info.Participants)))
		}
		slices.Sort(groups)
		if len(groups) > 0 {
			fmt.Fprintf(&sb, "\n**Groups:**\n\n%s\n", strings.Join(groups, "\n"))
		}
	}
	return sb.String()
}
