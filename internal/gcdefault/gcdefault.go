// Package gcdefault is the garbage collector setting Causeway's bridge processes start with: the
// daemon, and the benchmark's bridge process in cmd/causeway-demo, whose figures mean something
// only if it runs the way production does.
package gcdefault

import "runtime/debug"

// Percent is GOGC unless the environment sets it. The relay's live heap is small (tens of MB)
// and nearly all of its garbage lives for one message, so collecting half as often costs
// little memory and saves most of the collector's few percent of the relay's CPU. GOGC and
// GOMEMLIMIT in the environment still win.
const Percent = 200

// Set applies Percent unless getenv (os.Getenv) has GOGC.
func Set(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
}
