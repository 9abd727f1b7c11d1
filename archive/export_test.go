package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// exportedArchive is an archive with a conversation, an image, and a bundle of everything.
func exportedArchive(t *testing.T, f ExportFilter) (*testEnv, []byte, *ExportReport) {
	t.Helper()
	env := newEnv(t)
	img := putMedia(t, env, "\x89PNG\r\n\x1a\n not really a picture")
	for _, en := range conversation(t0) {
		env.append(en)
	}
	pic := textMessage(group, alice, "Alice", "3EB0C1", "Site photo", t0.Add(30*time.Minute))
	pic.Message.Type = "image"
	pic.Message.Media = []MediaRef{{SHA256: img, MimeType: "image/png", FileName: "site.png"}}
	env.append(pic)
	var buf bytes.Buffer
	rep, err := env.a.Export(context.Background(), f, "records@gov.example", &buf)
	if err != nil {
		t.Fatal(err)
	}
	return env, buf.Bytes(), rep
}

func verifyBundleBytes(t *testing.T, data []byte, opts BundleOptions) *BundleReport {
	t.Helper()
	rep, err := VerifyBundle(bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	return rep
}

func TestExportBundleVerifiesOffline(t *testing.T) {
	env, bundle, exp := exportedArchive(t, ExportFilter{})
	rep := verifyBundleBytes(t, bundle, BundleOptions{TrustedKey: env.a.VerifierKey()})
	if !rep.OK() {
		t.Fatalf("fresh bundle fails:%s", problemList(rep.Problems))
	}
	// Everything: every entry up to the checkpoint, including the export entry itself.
	if uint64(rep.Entries) != exp.Checkpoint.Size || rep.ExportIndex != exp.Index || !rep.KeyPinned || rep.Media != 1 {
		t.Fatalf("report %+v, want %d entries, export %d, pinned key, 1 media", rep, exp.Checkpoint.Size, exp.Index)
	}
	if len(rep.Chats) != 2 {
		t.Fatalf("chats %v, want the group and the 1:1 chat", rep.Chats)
	}
	// The export is itself on the record.
	en, err := env.a.Entry(context.Background(), exp.Index)
	if err != nil || en.Kind != KindExport || en.Actor != "records@gov.example" {
		t.Fatalf("export entry %+v (%v)", en, err)
	}

	// A bundle signed by someone else's key is not accepted when the office pins its own.
	if rep := verifyBundleBytes(t, bundle, BundleOptions{TrustedKey: otherKey(t, env.opts.Origin)}); rep.OK() {
		t.Fatal("bundle verified under a key that did not sign it")
	}
}

func TestBundleDetectsAnyChangedByte(t *testing.T) {
	env, bundle, exp := exportedArchive(t, ExportFilter{Chat: group})
	cp, err := ParseCheckpoint(zipFile(t, bundle, bundleCheckpoint), env.a.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	entries := zipFile(t, bundle, bundleEntries)
	lines := bytes.SplitAfter(entries, []byte("\n"))
	lines = lines[:len(lines)-1] // after the final newline
	offset := 0
	for n, line := range lines {
		// Every byte of every line, checked where lines are checked; the whole bundle for one byte per
		// line (running the full check for every byte would take the suite seconds, for no more coverage).
		for i := range line {
			changed := bytes.Clone(line)
			changed[i] ^= 0x01
			rep := &BundleReport{}
			if views, _ := verifyBundleEntries(rep, changed, cp); rep.OK() && len(views) == 1 {
				t.Fatalf("line %d byte %d (%q -> %q) changed and the line still verifies", n+1, i, line[i], line[i]^1)
			}
		}
		changed := bytes.Clone(entries)
		changed[offset+len(line)/2] ^= 0x01
		if rep := verifyBundleBytes(t, rewriteZip(t, bundle, bundleEntries, changed), BundleOptions{}); rep.OK() {
			t.Fatalf("line %d changed and the bundle still verifies", n+1)
		}
		offset += len(line)
	}
	if len(lines) < 10 || exp.Entries != len(lines) {
		t.Fatalf("%d lines for %d exported entries: the test checked too little", len(lines), exp.Entries)
	}
	for _, name := range []string{bundleTranscript, bundleCheckpoint, bundleManifest} {
		changed := bytes.Clone(zipFile(t, bundle, name))
		changed[len(changed)/2] ^= 0x01
		if rep := verifyBundleBytes(t, rewriteZip(t, bundle, name, changed), BundleOptions{}); rep.OK() {
			t.Errorf("%s changed and the bundle still verifies", name)
		}
	}
	for _, f := range zipNames(t, bundle) {
		if strings.HasPrefix(f, bundleMediaPrefix) {
			changed := bytes.Clone(zipFile(t, bundle, f))
			changed[0] ^= 0x01
			if rep := verifyBundleBytes(t, rewriteZip(t, bundle, f, changed), BundleOptions{}); !hasBundleProblem(rep, ProblemMediaAltered) {
				t.Errorf("media changed: %s", problemList(rep.Problems))
			}
		}
	}
}

func TestExportFilters(t *testing.T) {
	cases := []struct {
		name      string
		filter    ExportFilter
		wantChats []string
		contains  []string
		absent    []string
	}{
		{"chat", ExportFilter{Chat: group}, []string{group},
			[]string{"deleted for everyone", "Let&#39;s not put the number in writing", "&lt;b&gt;not bold&lt;/b&gt;", "Edited by Bob", "Carol: Reacted 👍", `<img src="media/`},
			[]string{"Call me on my private number"}},
		{"user", ExportFilter{User: bob}, []string{group, bob},
			[]string{"Call me on my private number", "deleted for me", "Send sent", "The chat was deleted"},
			[]string{"Tender closes Friday"}},
		{"time window", ExportFilter{From: t0.Add(10 * time.Minute), To: t0.Add(13 * time.Minute)}, []string{bob},
			[]string{"Call me on my private number", "Please use official channels."},
			[]string{"Tender closes Friday"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, bundle, _ := exportedArchive(t, tc.filter)
			rep := verifyBundleBytes(t, bundle, BundleOptions{})
			if !rep.OK() {
				t.Fatalf("filtered bundle fails:%s", problemList(rep.Problems))
			}
			if strings.Join(rep.Chats, ",") != strings.Join(tc.wantChats, ",") {
				t.Fatalf("chats %v, want %v", rep.Chats, tc.wantChats)
			}
			html := string(zipFile(t, bundle, bundleTranscript))
			for _, s := range tc.contains {
				if !strings.Contains(html, s) {
					t.Errorf("transcript lacks %q", s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(html, s) {
					t.Errorf("transcript has %q, which the filter excludes", s)
				}
			}
			if strings.Contains(html, "<b>not bold</b>") {
				t.Error("message text reached the transcript unescaped")
			}
		})
	}
}

func TestExportAfterDisposalStillVerifies(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	for _, en := range conversation(t0) {
		env.append(en)
	}
	env.clock.Set(t0.Add(11 * year))
	disp, err := env.a.Dispose(ctx, t0.Add(time.Hour), "records@gov.example")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err = env.a.Export(ctx, ExportFilter{}, "records@gov.example", &buf); err != nil {
		t.Fatal(err)
	}
	rep := verifyBundleBytes(t, buf.Bytes(), BundleOptions{})
	if !rep.OK() || uint64(rep.Disposed) != disp.Entries {
		t.Fatalf("bundle after disposal: disposed %d want %d:%s", rep.Disposed, disp.Entries, problemList(rep.Problems))
	}
	if !strings.Contains(string(zipFile(t, buf.Bytes(), bundleTranscript)), "Disposed entries") {
		t.Error("transcript does not list the disposed entries")
	}
}

func hasBundleProblem(rep *BundleReport, code string) bool {
	for _, p := range rep.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

func zipNames(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name)
	}
	return out
}

func zipFile(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == name {
			b, err := readZipFile(f)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%s not in bundle", name)
	return nil
}

// rewriteZip returns the bundle with one file's content replaced, as someone editing it would.
func rewriteZip(t *testing.T, data []byte, name string, content []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == name {
			_, err = w.Write(content)
		} else {
			var rc io.ReadCloser
			if rc, err = f.Open(); err == nil {
				_, err = io.Copy(w, rc)
				rc.Close()
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err = zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestTranscriptShowsBackfilledMedia: history media fetched after its message was archived
// with a placeholder appears on that message in the transcript, and the bundle verifies.
func TestTranscriptShowsBackfilledMedia(t *testing.T) {
	env := newEnv(t)
	img := putMedia(t, env, "\x89PNG\r\n\x1a\n fetched later")
	placeholder := textMessage(group, alice, "Alice", "3EB0LAZY1", "[photo: being fetched]", t0)
	placeholder.Source = "history_sync"
	env.append(placeholder)
	fill := &Entry{Kind: KindMediaBackfill, Chat: group, Sender: alice, Source: "history_sync", Time: t0.Add(time.Minute),
		Target:  &Target{MessageID: "3EB0LAZY1", Sender: alice},
		Message: &Message{Type: "image", Media: []MediaRef{{SHA256: img, MimeType: "image/png", FileName: "later.png"}}}}
	env.append(fill)
	var buf bytes.Buffer
	if _, err := env.a.Export(context.Background(), ExportFilter{}, "records@gov.example", &buf); err != nil {
		t.Fatal(err)
	}
	if rep := verifyBundleBytes(t, buf.Bytes(), BundleOptions{TrustedKey: env.a.VerifierKey()}); !rep.OK() || rep.Media != 1 {
		t.Fatalf("bundle: %+v%s", rep, problemList(rep.Problems))
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var html string
	for _, zf := range zr.File {
		if zf.Name == "transcript.html" {
			rc, _ := zf.Open()
			data, _ := io.ReadAll(rc)
			rc.Close()
			html = string(data)
		}
	}
	msgAt := strings.Index(html, "[photo: being fetched]")
	if msgAt < 0 {
		t.Fatalf("transcript lacks the placeholder message:\n%s", html)
	}
	rest := html[msgAt:]
	if end := strings.Index(rest, `<div class="item`); end > 0 {
		rest = rest[:end] // the placeholder message's own item
	}
	for _, want := range []string{"media/" + img, "Media fetched from WhatsApp after the message was archived"} {
		if !strings.Contains(rest, want) {
			t.Errorf("the placeholder message's part of the transcript lacks %q:\n%s", want, rest)
		}
	}
}
