package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mau.fi/whatsmeow/types"

	"codeberg.org/causeway/causeway/config"
)

func (b *Bridge) addContactCommands(cs *commandSet) {
	cs.add(&command{name: "contacts", args: "[search]", minLevel: config.LevelUser, handler: b.cmdContacts,
		help: "List your WhatsApp contacts, or those whose name or number contains the search."})
	cs.add(&command{name: "start-chat", args: "+NUMBER|name", minLevel: config.LevelUser, handler: b.cmdStartChat,
		help: "Open a chat with a WhatsApp contact, by number or by a unique part of their name."})
	cs.add(&command{name: "sync", args: "contacts|groups|all", minLevel: config.LevelUser, handler: b.cmdSync,
		help: "Refresh contacts' names, or create rooms for every WhatsApp group you are in."})
}

func (b *Bridge) cmdSync(ctx context.Context, ce *commandEvent) string {
	what := "all"
	if len(ce.args) > 0 {
		what = strings.ToLower(ce.args[0])
	}
	if what != "contacts" && what != "groups" && what != "all" {
		return "Usage: `sync contacts|groups|all`"
	}
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil {
		return "You are not logged in."
	}
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil {
		return "You are not logged in."
	}
	var done []string
	if what != "groups" {
		u.syncContactPuppets(ctx)
		done = append(done, "contacts' names refreshed")
	}
	if what != "contacts" {
		groups, err := cli.GetJoinedGroups(ctx)
		if err != nil {
			return "Could not list your WhatsApp groups: " + err.Error()
		}
		for _, g := range groups {
			u.ensurePortal(ctx, g.JID, true)
		}
		done = append(done, fmt.Sprintf("%d groups synced (new ones become rooms in a moment)", len(groups)))
	}
	return strings.Join(done, "; ") + "."
}

type contactRow struct {
	jid  types.JID
	name string
}

// contactList returns the user's WhatsApp contacts that match search, sorted by name.
func (u *User) contactList(ctx context.Context, search string) ([]contactRow, error) {
	u.mu.Lock()
	cli := u.client
	u.mu.Unlock()
	if cli == nil || cli.Store.Contacts == nil {
		return nil, fmt.Errorf("you are not logged in")
	}
	all, err := cli.Store.Contacts.GetAllContacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read your contacts: %w", err)
	}
	search = strings.ToLower(strings.TrimPrefix(search, "+"))
	own := u.ownJID()
	var out []contactRow
	for jid, info := range all {
		if jid.Server != types.DefaultUserServer || jid.User == own.User {
			continue
		}
		name := u.b.cfg.PuppetDisplayname(config.ContactNames{FullName: info.FullName, FirstName: info.FirstName,
			PushName: info.PushName, BusinessName: info.BusinessName, Phone: "+" + jid.User})
		if search == "" || strings.Contains(strings.ToLower(name), search) || strings.Contains(jid.User, search) {
			out = append(out, contactRow{jid: jid, name: name})
		}
	}
	slices.SortFunc(out, func(a, b contactRow) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func (b *Bridge) cmdContacts(ctx context.Context, ce *commandEvent) string {
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil {
		return "You are not logged in."
	}
	rows, err := u.contactList(ctx, strings.Join(ce.args, " "))
	if err != nil {
		return "Sorry: " + err.Error()
	}
	if len(rows) == 0 {
		return "No WhatsApp contacts match."
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%d WhatsApp contacts**\n\n", len(rows))
	for _, r := range rows {
		fmt.Fprintf(&sb, "* %s: +%s (%s)\n", r.name, r.jid.User, b.cfg.PuppetUserID(r.jid.User))
	}
	return sb.String()
}

func (b *Bridge) cmdStartChat(ctx context.Context, ce *commandEvent) string {
	if len(ce.args) == 0 {
		return "Usage: `start-chat +4917612345678` or `start-chat NAME`"
	}
	u, err := b.getUser(ctx, ce.sender, false)
	if err != nil || u == nil {
		return "You are not logged in."
	}
	arg := strings.Join(ce.args, " ")
	var jid types.JID
	if number := strings.TrimPrefix(strings.ReplaceAll(arg, " ", ""), "+"); phoneNumber.MatchString(number) {
		jid = types.NewJID(number, types.DefaultUserServer)
	} else {
		rows, err := u.contactList(ctx, arg)
		if err != nil {
			return "Sorry: " + err.Error()
		}
		switch len(rows) {
		case 0:
			return fmt.Sprintf("No contact matches %q. Send `contacts` to see them.", arg)
		case 1:
			jid = rows[0].jid
		default:
			return fmt.Sprintf("%d contacts match %q; give more of the name or the number.", len(rows), arg)
		}
	}
	u.ensurePortal(ctx, jid, false)
	return fmt.Sprintf("Opening a chat with +%s: %s will invite you in a moment.", jid.User, b.cfg.PuppetUserID(jid.User))
}
