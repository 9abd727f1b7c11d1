package cliflags

import (
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantPos  []string
		wantChat string
		wantErr  error
	}{
		{"flags first", []string{"--chat", "+49", "a.zip"}, []string{"a.zip"}, "+49", nil},
		{"flags after", []string{"a.zip", "--chat", "+49"}, []string{"a.zip"}, "+49", nil},
		{"flags between", []string{"a.zip", "--chat", "+49", "b.zip"}, []string{"a.zip", "b.zip"}, "+49", nil},
		{"none", nil, nil, "", nil},
		{"help", []string{"x", "-h"}, nil, "", flag.ErrHelp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			chat := fs.String("chat", "", "")
			pos, err := Parse(fs, tt.args)
			if !errors.Is(err, tt.wantErr) || !slices.Equal(pos, tt.wantPos) || *chat != tt.wantChat {
				t.Errorf("Parse(%q) = %q, %v, chat %q; want %q, %v, %q", tt.args, pos, err, *chat, tt.wantPos, tt.wantErr, tt.wantChat)
			}
		})
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Parse(fs, []string{"a", "--nope"}); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Errorf("an unknown flag gave %v", err)
	}
}
