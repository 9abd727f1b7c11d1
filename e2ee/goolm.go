//go:build goolm

package e2ee

import "maunium.net/go/mautrix/crypto/olm"

// Driver names the Olm implementation linked in: always goolm (pure Go), never libolm.
func Driver() string { return olm.Driver }
