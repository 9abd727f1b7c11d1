package config

import (
	"strings"

	"maunium.net/go/mautrix/id"
)

// Level is what a Matrix user may do with the bridge. Higher levels include the lower ones.
type Level int

// Permission levels, from none to everything.
const (
	LevelNone    Level = 0
	LevelRelay   Level = 5
	LevelUser    Level = 10
	LevelRecords Level = 50
	LevelAdmin   Level = 100
)

var levelNames = []struct {
	name  string
	level Level
}{
	{"relay", LevelRelay},
	{"user", LevelUser},
	{"records", LevelRecords},
	{"admin", LevelAdmin},
}

// ParseLevel turns a permission name from the config into a Level.
func ParseLevel(name string) (Level, bool) {
	for _, l := range levelNames {
		if l.name == name {
			return l.level, true
		}
	}
	return LevelNone, false
}

func (l Level) String() string {
	for _, n := range levelNames {
		if n.level == l {
			return n.name
		}
	}
	return "none"
}

// Permissions maps "*", a server name or a Matrix user ID to a level name.
type Permissions map[string]string

// LevelFor returns the level of userID: its own entry, else its server's, else "*".
// Levels are validated at load, so unknown names cannot occur here.
func (p Permissions) LevelFor(userID id.UserID) Level {
	if name, ok := p[string(userID)]; ok {
		l, _ := ParseLevel(name)
		return l
	}
	if _, server, err := userID.Parse(); err == nil {
		if name, ok := p[server]; ok {
			l, _ := ParseLevel(name)
			return l
		}
	}
	if name, ok := p["*"]; ok {
		l, _ := ParseLevel(name)
		return l
	}
	return LevelNone
}

func validPermissionKey(key string) bool {
	switch {
	case key == "*":
		return true
	case strings.HasPrefix(key, "@"):
		_, _, err := id.UserID(key).Parse()
		return err == nil
	default:
		return key != "" && !strings.ContainsAny(key, " @/")
	}
}
