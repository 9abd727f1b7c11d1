package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
)

// Validate checks every value and compiles the templates. It returns all problems at once,
// each naming its key path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(path, value string, allowed ...string) {
		if !slices.Contains(allowed, value) {
			bad(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
		}
	}
	httpURL := func(path, value string) {
		u, err := url.Parse(value)
		if value == "" {
			bad(path, "must be set")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(path, "%q is not an http:// or https:// URL", value)
		}
	}
	localpart := func(path, value string) {
		if value == "" {
			bad(path, "must be set")
		} else if err := id.ValidateUserLocalpart(value); err != nil {
			bad(path, "%q is not a valid Matrix localpart: %v", value, err)
		}
	}

	httpURL("homeserver.address", c.Homeserver.Address)
	if c.Homeserver.Domain == "" {
		bad("homeserver.domain", "must be set (the homeserver's server_name)")
	} else if strings.ContainsAny(c.Homeserver.Domain, " @/") || strings.Contains(c.Homeserver.Domain, "://") {
		bad("homeserver.domain", "%q is not a server name (want e.g. example.org)", c.Homeserver.Domain)
	}

	as := &c.Appservice
	if as.ID == "" || strings.ContainsAny(as.ID, " /") {
		bad("appservice.id", "%q must be a non-empty word", as.ID)
	}
	if as.Hostname == "" {
		bad("appservice.hostname", "must be set (the address to listen on)")
	}
	if as.Port < 1 || as.Port > 65535 {
		bad("appservice.port", "%d is not a TCP port (1-65535)", as.Port)
	}
	httpURL("appservice.address", as.Address)
	for path, token := range map[string]string{"appservice.as_token": as.ASToken, "appservice.hs_token": as.HSToken} {
		if token == "" {
			bad(path, "must be set (or %q to have -g generate it)", PlaceholderToken)
		} else if strings.ContainsAny(token, " \t\r\n") {
			bad(path, "must not contain white space")
		}
	}
	localpart("appservice.bot.username", as.Bot.Username)
	if as.Bot.Avatar != "" {
		if _, err := id.ContentURIString(as.Bot.Avatar).Parse(); err != nil {
			bad("appservice.bot.avatar", "%q is not an mxc:// URI", as.Bot.Avatar)
		}
	}
	var err error
	if as.Puppets.username, err = parseUsernameTemplate(as.Puppets.UsernameTemplate); err != nil {
		bad("appservice.puppets.username_template", "%v", err)
	} else if as.Puppets.username.matches(as.Bot.Username) {
		bad("appservice.bot.username", "%q falls inside the puppet namespace of username_template", as.Bot.Username)
	}
	if as.Puppets.displayname, err = parseDisplaynameTemplate(as.Puppets.DisplaynameTemplate); err != nil {
		bad("appservice.puppets.displayname_template", "%v", err)
	}

	db := &c.Database
	oneOf("database.type", db.Type, "sqlite", "postgres")
	if db.URI == "" {
		bad("database.uri", "must be set (a file path for sqlite, a postgres:// URI for postgres)")
	} else if db.Type == "postgres" && !strings.HasPrefix(db.URI, "postgres://") && !strings.HasPrefix(db.URI, "postgresql://") {
		bad("database.uri", "%q is not a postgres:// URI", db.URI)
	}
	if db.MaxOpenConns < 1 {
		bad("database.max_open_conns", "%d must be at least 1", db.MaxOpenConns)
	}
	if db.MaxIdleConns < 0 || db.MaxIdleConns > db.MaxOpenConns {
		bad("database.max_idle_conns", "%d must be between 0 and max_open_conns (%d)", db.MaxIdleConns, db.MaxOpenConns)
	}
	for path, d := range map[string]string{"database.conn_max_idle_time": db.ConnMaxIdleTime, "database.conn_max_lifetime": db.ConnMaxLifetime} {
		if d == "" {
			continue
		}
		if v, err := time.ParseDuration(d); err != nil || v <= 0 {
			bad(path, "%q is not a positive duration such as 5m", d)
		}
	}

	oneOf("bridge.deletes", c.Bridge.Deletes, "redact", "annotate")
	oneOf("bridge.view_once", c.Bridge.ViewOnce, "bridge", "notice")
	if d, err := time.ParseDuration(c.Bridge.RedactionWait); err != nil || d <= 0 {
		bad("bridge.redaction_wait", "%q is not a positive duration such as 2m", c.Bridge.RedactionWait)
	}
	hist := &c.Bridge.History
	for path, n := range map[string]int{"bridge.history.max_chats": hist.MaxChats, "bridge.history.max_age_days": hist.MaxAgeDays,
		"bridge.history.max_messages_per_chat": hist.MaxMessagesPerChat} {
		if n < 0 {
			bad(path, "%d must be 0 (unlimited) or more", n)
		}
	}
	oneOf("bridge.history.media", hist.Media, HistoryMediaEager, HistoryMediaLazy, HistoryMediaSkip)
	if d, err := time.ParseDuration(hist.OnDemandTimeout); err != nil || d <= 0 {
		bad("bridge.history.on_demand_timeout", "%q is not a positive duration such as 2m", hist.OnDemandTimeout)
	}
	if n := c.Bridge.Import.MaxMessages; n <= 0 {
		bad("bridge.import.max_messages", "%d must be 1 or more", n)
	}

	if r := c.Bridge.AdminRoom; r != "" {
		if !strings.HasPrefix(r, "!") || !strings.Contains(r, ":") {
			bad("bridge.admin_room", "%q is not a room ID like !abc:example.org (empty: the bot creates one)", r)
		}
	}
	if v := c.WhatsApp.Version; v != "" {
		if _, err := ParseWAVersion(v); err != nil {
			bad("whatsapp.version", "%v (empty: fetch the current one at start)", err)
		}
	}

	if f := c.Migration.DirectoryFile; f != "" {
		if !strings.HasSuffix(f, ".csv") && !strings.HasSuffix(f, ".json") {
			bad("migration.directory_file", "%q must end in .csv or .json", f)
		}
	}

	ar := &c.Archive
	if ar.Enabled {
		if ar.Dir == "" {
			bad("archive.dir", "must be set (where the signing key and media live)")
		}
		if ar.Origin == "" || strings.ContainsAny(ar.Origin, " \t\n+") {
			bad("archive.origin", "%q must be a non-empty name without spaces or '+'", ar.Origin)
		}
	}
	if ar.RetentionDays < 1 {
		bad("archive.retention_days", "%d must be at least 1", ar.RetentionDays)
	}
	for what, m := range map[string]map[string]int{"archive.retention_chats": ar.RetentionChats, "archive.retention_users": ar.RetentionUsers} {
		for jid, days := range m {
			if days < 1 {
				bad(joinPath(what, jid), "%d must be at least 1", days)
			}
			if !strings.Contains(jid, "@") {
				bad(joinPath(what, jid), "%q is not a WhatsApp JID (e.g. 4917612345678@s.whatsapp.net)", jid)
			}
		}
	}
	if ar.CheckpointEvery < 1 {
		bad("archive.checkpoint_every", "%d must be at least 1", ar.CheckpointEvery)
	}
	if d, err := time.ParseDuration(ar.CheckpointInterval); err != nil || d <= 0 {
		bad("archive.checkpoint_interval", "%q is not a positive duration such as 10s", ar.CheckpointInterval)
	}

	if len(c.Permissions) == 0 {
		bad("permissions", "is empty: nobody could use the bridge")
	}
	for _, key := range sortedStringKeys(c.Permissions) {
		path := joinPath("permissions", key)
		if !validPermissionKey(key) {
			bad(path, "%q is not \"*\", a server name or a Matrix user ID", key)
		}
		if _, ok := ParseLevel(c.Permissions[key]); !ok {
			bad(path, "%q is not one of relay, user, records, admin", c.Permissions[key])
		}
	}

	if t := c.Metrics.Token; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		bad("metrics.token", "must be empty (no authentication) or at least 16 characters without white space")
	}

	c.Encryption.validate(bad)

	oneOf("logging.level", c.Logging.Level, "trace", "debug", "info", "warn", "error")
	oneOf("logging.format", c.Logging.Format, "auto", "pretty", "json")

	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
