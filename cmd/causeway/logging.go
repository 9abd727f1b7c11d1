package main

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"codeberg.org/causeway/causeway/config"
)

// newLogger logs JSON for machines and readable lines for a person at a terminal.
func newLogger(cfg config.Logging, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		level = zerolog.InfoLevel // validated at load; only reachable with a hand-built config
	}
	pretty := cfg.Format == "pretty"
	if cfg.Format == "auto" {
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			pretty = true
		}
	}
	if pretty {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
