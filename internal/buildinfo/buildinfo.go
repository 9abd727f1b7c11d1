// Package buildinfo says which Causeway this is: release version, source commit and Go version.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time:
//
//	go build -ldflags "-X codeberg.org/causeway/causeway/internal/buildinfo.Version=1.0.0 -X ...Commit=$(git rev-parse HEAD)"
var (
	Version = "0.1.0-dev"
	Commit  = ""
)

// Info is the version triple the CLI and the bot report.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
}

// Get returns the build's info, taking the commit from the Go toolchain's VCS stamp
// when the linker flag was not given.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if info.Commit == "" {
		info.Commit = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					info.Commit = s.Value
				}
			}
		}
	}
	return info
}

// String is "causeway 0.1.0-dev (commit abc123, go1.26.8)".
func (i Info) String() string {
	commit := i.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	return "causeway " + i.Version + " (commit " + commit + ", " + i.GoVersion + ")"
}
