package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeNode decodes node into the value v points to, field by field, so that every
// error can name the key path ("database.type") rather than a YAML line number alone.
func decodeNode(node *yaml.Node, v any, path string) error {
	return decodeValue(node, reflect.ValueOf(v).Elem(), path)
}

func decodeValue(node *yaml.Node, val reflect.Value, path string) error {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if val.Kind() != reflect.Struct {
		if val.Kind() == reflect.Map {
			// A map in the file replaces the default map whole: merging permissions from
			// the example into an operator's list would grant access nobody wrote down.
			val.Set(reflect.MakeMap(val.Type()))
		}
		if err := node.Decode(val.Addr().Interface()); err != nil {
			return pathError(path, node, describeDecodeError(node, val.Type()))
		}
		return nil
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return pathError(path, node, "must be a mapping of keys to values")
	}
	fields := yamlFields(val.Type())
	seen := make(map[string]bool, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		keyNode, valueNode := node.Content[i], node.Content[i+1]
		key := keyNode.Value
		keyPath := joinPath(path, key)
		if seen[key] {
			return pathError(keyPath, keyNode, "is set twice")
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			return pathError(keyPath, keyNode, "unknown key (known here: "+strings.Join(sortedKeys(fields), ", ")+")")
		}
		if err := decodeValue(valueNode, val.Field(idx), keyPath); err != nil {
			return err
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	return fields
}

// sortedKeys lists the keys in field order, which matches the example file.
func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int { return m[a] - m[b] })
	return out
}

func describeDecodeError(node *yaml.Node, t reflect.Type) string {
	got := fmt.Sprintf("%q", node.Value)
	switch node.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return got + " is not a whole number"
	case reflect.Bool:
		return got + " is not true or false"
	case reflect.String:
		return got + " is not a string"
	case reflect.Map:
		return got + " is not a mapping of keys to values"
	default:
		return got + " has the wrong type (want " + t.String() + ")"
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	if strings.ContainsAny(key, ".*@: ") {
		return path + "[" + fmt.Sprintf("%q", key) + "]"
	}
	return path + "." + key
}

// Error is a configuration problem at one key path.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
	}
	return e.Path + ": " + e.Msg
}

func pathError(path string, node *yaml.Node, msg string) error {
	line := 0
	if node != nil {
		line = node.Line
	}
	return &Error{Path: path, Line: line, Msg: msg}
}
