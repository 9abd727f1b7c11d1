package config

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"maunium.net/go/mautrix/id"
)

// usernameMarker stands in for the WhatsApp number when the username template is turned
// into the registration's namespace regex. It cannot occur in a rendered template.
const usernameMarker = "\x00number\x00"

type usernameTemplate struct {
	tmpl  *template.Template
	regex *regexp.Regexp // matches whole localparts the template can produce
	expr  string         // the regex source, without anchors
}

func parseUsernameTemplate(src string) (*usernameTemplate, error) {
	if src == "" {
		return nil, fmt.Errorf("must be set")
	}
	tmpl, err := template.New("username").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid Go template: %w", src, err)
	}
	var sb strings.Builder
	if err := tmpl.Execute(&sb, usernameMarker); err != nil {
		return nil, fmt.Errorf("%q cannot be rendered: %w", src, err)
	}
	rendered := sb.String()
	if strings.Count(rendered, usernameMarker) != 1 {
		return nil, fmt.Errorf("%q must use {{.}} (the WhatsApp number) exactly once", src)
	}
	prefix, suffix, _ := strings.Cut(rendered, usernameMarker)
	if err := id.ValidateUserLocalpart(prefix + "4915550001" + suffix); err != nil {
		return nil, fmt.Errorf("%q does not produce valid Matrix localparts: %w", src, err)
	}
	if prefix == "" && suffix == "" {
		return nil, fmt.Errorf("%q needs a fixed prefix or suffix, or the bridge would claim every user", src)
	}
	expr := regexp.QuoteMeta(prefix) + "[0-9]+" + regexp.QuoteMeta(suffix)
	return &usernameTemplate{tmpl: tmpl, regex: regexp.MustCompile("^" + expr + "$"), expr: expr}, nil
}

func (t *usernameTemplate) matches(localpart string) bool {
	return t.regex.MatchString(localpart)
}

// PuppetLocalpart renders the username template for a WhatsApp number (digits only).
func (c *Config) PuppetLocalpart(number string) string {
	var sb strings.Builder
	// Execution cannot fail: the template was rendered with a string at validation.
	_ = c.Appservice.Puppets.username.tmpl.Execute(&sb, number)
	return sb.String()
}

// PuppetUserID is the Matrix user ID of the ghost for a WhatsApp number.
func (c *Config) PuppetUserID(number string) id.UserID {
	return id.NewUserID(c.PuppetLocalpart(number), c.Homeserver.Domain)
}

// IsPuppet reports whether userID is in the bridge's ghost namespace, and returns the number.
func (c *Config) IsPuppet(userID id.UserID) (number string, ok bool) {
	localpart, server, err := userID.Parse()
	if err != nil || server != c.Homeserver.Domain || !c.Appservice.Puppets.username.matches(localpart) {
		return "", false
	}
	return strings.TrimFunc(localpart, func(r rune) bool { return r < '0' || r > '9' }), true
}

// PuppetNamespaceRegex is the registration regex for every ghost user ID.
func (c *Config) PuppetNamespaceRegex() string {
	return "@" + c.Appservice.Puppets.username.expr + ":" + regexp.QuoteMeta(c.Homeserver.Domain)
}

// BotUserID is the bridge bot's Matrix user ID.
func (c *Config) BotUserID() id.UserID {
	return id.NewUserID(c.Appservice.Bot.Username, c.Homeserver.Domain)
}

// ContactNames is what the displayname template can use.
type ContactNames struct {
	FullName     string
	FirstName    string
	PushName     string
	BusinessName string
	Phone        string
}

type displaynameTemplate struct {
	tmpl *template.Template
}

func parseDisplaynameTemplate(src string) (*displaynameTemplate, error) {
	if src == "" {
		return nil, fmt.Errorf("must be set")
	}
	tmpl, err := template.New("displayname").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid Go template: %w", src, err)
	}
	var sb strings.Builder
	if err := tmpl.Execute(&sb, ContactNames{Phone: "+4915550001"}); err != nil {
		return nil, fmt.Errorf("%q cannot be rendered: %w", src, err)
	}
	if strings.TrimSpace(sb.String()) == "" {
		return nil, fmt.Errorf("%q renders an empty name for a contact known only by number", src)
	}
	return &displaynameTemplate{tmpl: tmpl}, nil
}

// PuppetDisplayname renders the displayname template.
func (c *Config) PuppetDisplayname(names ContactNames) string {
	var sb strings.Builder
	if err := c.Appservice.Puppets.displayname.tmpl.Execute(&sb, names); err != nil || strings.TrimSpace(sb.String()) == "" {
		return names.Phone
	}
	return sb.String()
}
