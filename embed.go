// Package causeway holds the files that live at the root of the repository and that the
// binary carries with it.
package causeway

import _ "embed"

// ExampleConfig is config.example.yaml: the documented defaults.
//
//go:embed config.example.yaml
var ExampleConfig []byte
