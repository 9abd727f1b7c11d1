package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// printer writes the demo's story for a person: plain lines, no log fields. The bridge's own
// structured log goes to the data directory instead.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newPrinter(w io.Writer) *printer { return &printer{w: w, start: time.Now()} }

// Linef prints one line, prefixed by the time since the demo started.
func (p *printer) Linef(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// Block prints lines as they are, for the login instructions and the summary.
func (p *printer) Block(lines ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, strings.Join(lines, "\n"))
}
