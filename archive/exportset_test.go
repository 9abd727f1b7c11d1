package archive

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// retamper rebuilds a bundle as a forger with the package's own code would: drop the entries.jsonl
// lines and media files they want gone, set the manifest's count to match and render transcript.html
// again from what is left, so that everything the bundle says about itself agrees.
// With keepTranscript the forger does not bother, and transcript.html still shows what was removed.
func retamper(t *testing.T, bundle []byte, dropLine func(*bundleLine, *decodedBody) bool, dropMedia, keepTranscript bool) []byte {
	t.Helper()
	cp, err := ParseCheckpoint(zipFile(t, bundle, bundleCheckpoint), strings.TrimSpace(string(zipFile(t, bundle, bundleKey))))
	if err != nil {
		t.Fatal(err)
	}
	var manifest bundleManifestJSON
	if err = json.Unmarshal(zipFile(t, bundle, bundleManifest), &manifest); err != nil {
		t.Fatal(err)
	}
	var kept bytes.Buffer
	var views []transcriptEntry
	for _, raw := range bytes.Split(bytes.TrimSuffix(zipFile(t, bundle, bundleEntries), []byte("\n")), []byte("\n")) {
		line, err := parseLine(raw)
		if err != nil {
			t.Fatal(err)
		}
		var dec *decodedBody
		if line.Body != nil {
			if dec, err = decodeBody(line.Body); err != nil {
				t.Fatal(err)
			}
		}
		if dropLine != nil && dropLine(line, dec) {
			continue
		}
		kept.Write(encodeLine(line))
		v := transcriptEntry{Index: line.Index}
		if dec != nil {
			v.Entry, v.Captured = &dec.Entry, dec.Captured
		}
		views = append(views, v)
	}
	manifest.Entries = len(views)
	present := map[string]bool{}
	files := map[string][]byte{}
	for _, name := range zipNames(t, bundle) {
		sha, isMedia := strings.CutPrefix(name, bundleMediaPrefix)
		if isMedia && dropMedia {
			continue
		}
		if isMedia {
			present[sha] = true
		}
		files[name] = zipFile(t, bundle, name)
	}
	files[bundleEntries] = kept.Bytes()
	m, _ := json.MarshalIndent(manifest, "", "  ")
	files[bundleManifest] = append(m, '\n')
	if !keepTranscript {
		if files[bundleTranscript], err = renderTranscript(transcriptHeader{Origin: cp.Origin, Checkpoint: cp, Filter: manifest.Filter}, views, present); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, name := range zipNames(t, bundle) {
		data, ok := files[name]
		if !ok {
			continue
		}
		if err = writeZipFile(zw, name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err = zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestBundlePinsExportedSet: the export entry, which the checkpoint signs, records what was exported,
// so a bundle with a line or a photo taken out verifies as altered, however consistent the rest of it
// was made.
func TestBundlePinsExportedSet(t *testing.T) {
	isText := func(text string) func(*bundleLine, *decodedBody) bool {
		return func(_ *bundleLine, dec *decodedBody) bool {
			return dec != nil && dec.Entry.Message != nil && dec.Entry.Message.Text == text
		}
	}
	cases := []struct {
		name      string
		filter    ExportFilter
		dropLine  func(*bundleLine, *decodedBody) bool
		dropMedia bool
		keepHTML  bool
		want      string // a problem code; empty: the bundle verifies
	}{
		{name: "untouched, everything", filter: ExportFilter{}},
		{name: "untouched, one chat", filter: ExportFilter{Chat: group}},
		{name: "entry removed, everything", filter: ExportFilter{}, dropLine: isText("Let's not put the number in writing"), want: ProblemExportSetMismatch},
		{name: "entry removed, one chat", filter: ExportFilter{Chat: group}, dropLine: isText("Let's not put the number in writing"), want: ProblemExportSetMismatch},
		{name: "last entry before the export removed", filter: ExportFilter{}, dropLine: isText("Site photo"), dropMedia: true, want: ProblemExportSetMismatch},
		{name: "photo removed", filter: ExportFilter{}, dropMedia: true, want: ProblemMediaMissing},
		{name: "photo removed, one chat", filter: ExportFilter{Chat: group}, dropMedia: true, want: ProblemMediaMissing},
		{name: "photo removed, transcript left as it was", filter: ExportFilter{}, dropMedia: true, keepHTML: true, want: ProblemMediaMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, bundle, _ := exportedArchive(t, tc.filter)
			changed := retamper(t, bundle, tc.dropLine, tc.dropMedia, tc.keepHTML)
			if tc.want != "" && bytes.Equal(zipFile(t, changed, bundleEntries), zipFile(t, bundle, bundleEntries)) && !tc.dropMedia {
				t.Fatal("the tamper removed nothing")
			}
			rep := verifyBundleBytes(t, changed, BundleOptions{TrustedKey: env.a.VerifierKey()})
			if tc.want == "" {
				if !rep.OK() {
					t.Fatalf("rebuilt but unchanged bundle fails:%s", problemList(rep.Problems))
				}
				return
			}
			if !hasBundleProblem(rep, tc.want) {
				t.Fatalf("want %s, got:%s", tc.want, problemList(rep.Problems))
			}
			t.Logf("reported:%s", problemList(rep.Problems))
		})
	}
}
