package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"go.mau.fi/util/random"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/appservice"

	"codeberg.org/causeway/causeway/internal/secretfile"
)

// Registration builds the appservice registration the homeserver needs from this config.
// Placeholder tokens are replaced by fresh random ones in c as well, so the caller can
// write them back (WriteTokens) and both sides agree.
func (c *Config) Registration() *appservice.Registration {
	if c.Appservice.ASToken == PlaceholderToken || c.Appservice.ASToken == "" {
		c.Appservice.ASToken = random.String(64)
	}
	if c.Appservice.HSToken == PlaceholderToken || c.Appservice.HSToken == "" {
		c.Appservice.HSToken = random.String(64)
	}
	rateLimited := false
	reg := &appservice.Registration{
		ID:              c.Appservice.ID,
		URL:             c.Appservice.Address,
		AppToken:        c.Appservice.ASToken,
		ServerToken:     c.Appservice.HSToken,
		SenderLocalpart: c.Appservice.Bot.Username,
		RateLimited:     &rateLimited,
	}
	reg.Namespaces.UserIDs = appservice.NamespaceList{
		{Regex: c.PuppetNamespaceRegex(), Exclusive: true},
		{Regex: "@" + regexp.QuoteMeta(c.Appservice.Bot.Username) + ":" + regexp.QuoteMeta(c.Homeserver.Domain), Exclusive: true},
	}
	return reg
}

// WriteTokens sets appservice.as_token and appservice.hs_token in the YAML file at path to
// the values in c, keeping the rest of the file (comments included) as it is.
func (c *Config) WriteTokens(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("failed to parse config: %w", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: the top level is not a mapping", path)
	}
	as := mappingChild(root.Content[0], "appservice")
	setScalar(as, "as_token", c.Appservice.ASToken)
	setScalar(as, "hs_token", c.Appservice.HSToken)

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(&root); err != nil {
		return fmt.Errorf("failed to encode config: %w", err)
	}
	// 0600 whatever the copied example's mode was (0644 after `cp` under umask 022): the
	// file now holds both tokens, and either one lets its holder act as the bridge.
	return writeFileAtomic(path, buf.Bytes(), secretfile.FileMode)
}

// mappingChild returns the mapping under key, creating it when missing.
func mappingChild(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
	return child
}

func setScalar(m *yaml.Node, key, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", value, yaml.DoubleQuotedStyle
			v.Content = nil
			return
		}
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: yaml.DoubleQuotedStyle})
}

// writeFileAtomic replaces path so that a crash leaves either the old or the new file,
// never half of one. Mode 0 keeps an existing file's mode (0600 for a new one).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if mode == 0 {
		mode = secretfile.FileMode
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to replace %s: %w", path, err)
	}
	return nil
}

// SaveRegistration writes reg as YAML to path with mode 0600 (it holds both tokens). An
// existing registration keeps its mode: the homeserver, often another user, must read it,
// and the operator may have granted that through its group.
func SaveRegistration(reg *appservice.Registration, path string) error {
	data, err := yaml.Marshal(reg)
	if err != nil {
		return fmt.Errorf("failed to encode registration: %w", err)
	}
	return writeFileAtomic(path, data, 0)
}
