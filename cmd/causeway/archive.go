package main

import (
	"io"

	"codeberg.org/causeway/causeway/internal/archivecmd"
)

// runArchive is `causeway archive`, which lives in internal/archivecmd: it reaches the archive without
// the bridge, so the records tools do not depend on the daemon's code.
func runArchive(args []string, stdout, stderr io.Writer) int {
	return archivecmd.Run(args, stdout, stderr, newLogger)
}
