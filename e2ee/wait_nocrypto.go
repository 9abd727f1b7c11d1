//go:build !goolm

package e2ee

import (
	"context"
	"encoding/json"
	"time"
)

// WaitForKey is never reached in a build without crypto (see nocrypto.go).
func (m *Machine) WaitForKey(context.Context, json.RawMessage, time.Duration) bool { return false }
