package msgconv

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// checkGolden compares v, as indented JSON, with testdata/golden/<name>.json.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

type resultView struct {
	Action     string      `json:"action"`
	Target     string      `json:"target,omitempty"`
	Events     []eventView `json:"events,omitempty"`
	Redactions []Redaction `json:"redactions,omitempty"`
	Media      []mediaView `json:"media,omitempty"`
	Timer      string      `json:"timer,omitempty"`
	Note       string      `json:"note,omitempty"`
}

type eventView struct {
	Part    PartID          `json:"part"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

type mediaView struct {
	Part       int    `json:"part"`
	Source     string `json:"source,omitempty"`
	DirectPath string `json:"direct_path,omitempty"`
	InlineLen  int    `json:"inline_len,omitempty"`
	MimeType   string `json:"mimetype"`
	FileName   string `json:"filename"`
	Size       uint64 `json:"size"`
	Thumbnail  bool   `json:"thumbnail,omitempty"`
}

func viewResult(t *testing.T, res *ToMatrixResult) resultView {
	t.Helper()
	v := resultView{Action: res.Action.String(), Target: res.Target, Redactions: res.Redactions, Note: res.Note}
	for _, e := range res.Events {
		content, err := json.Marshal(e.Content)
		if err != nil {
			t.Fatalf("marshal content: %v", err)
		}
		v.Events = append(v.Events, eventView{Part: e.PartID, Type: e.Type.Type, Content: content})
	}
	for _, m := range res.Media {
		mv := mediaView{Part: m.Part, InlineLen: len(m.Data), MimeType: m.MimeType, FileName: m.FileName, Size: m.Size, Thumbnail: m.thumbnail}
		if m.Source != nil {
			mv.Source = fmt.Sprintf("%T", m.Source)
			mv.DirectPath = m.Source.GetDirectPath()
		}
		v.Media = append(v.Media, mv)
	}
	if res.Timer != nil {
		v.Timer = res.Timer.String()
	}
	return v
}
