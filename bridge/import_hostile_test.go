package bridge_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"codeberg.org/causeway/causeway/internal/importapi"
	"codeberg.org/causeway/causeway/internal/importcmd"
)

// maxImportGrowth is what one import may add to the process's peak memory, whatever the zip.
const maxImportGrowth = 300 << 20

// TestImportHostileZips sends the provisioning endpoint the two zips an attacker with a
// `user` account could send: a 10 MB zip whose attachment inflates to 10 GiB, and a 1 MB zip
// whose chat text inflates to 200 MB (2.4 million messages). Neither may take the bridge's
// memory; the first imports its messages with the attachment named as too large, the
// second is refused naming the cap before anything is imported.
func TestImportHostileZips(t *testing.T) {
	const contact = "4915551491"
	f := newImportFixture(t, []string{contact})
	chat := f.chats[contact]

	bombName := "VID-20240102-WA0001.mp4"
	attachmentBomb := zipBomb(t, "02/01/2024, 22:11 - Anna: before the video\n"+
		"02/01/2024, 22:12 - Anna: "+bombName+" (file attached)\n"+
		"02/01/2024, 22:13 - Anna: after the video\n", bombName, 10<<30)
	textBomb := chatTextBomb(t, 200<<20)
	t.Logf("attachment bomb: %d bytes; chat-text bomb: %d bytes", len(attachmentBomb), len(textBomb))
	imported := []string{"hi", "before the video",
		"[" + bombName + " (10240 MiB) is larger than the homeserver takes (" + strconv.Itoa(uploadLimitMiB(t, f)) + " MiB) and was not imported]",
		"after the video"}

	t.Run("10 GiB attachment", func(t *testing.T) {
		resetPeakRSS(t)
		before := peakRSS(t)
		status, body := postImport(t, f, contact, attachmentBomb)
		growth := peakRSS(t) - before
		t.Logf("peak RSS grew by %d MiB", growth>>20)
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		var rep importapi.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Imported != 3 || len(rep.TooLarge) != 1 || rep.TooLarge[0] != bombName {
			t.Fatalf("report: imported %d, too large %q; want 3 and the video", rep.Imported, rep.TooLarge)
		}
		if growth > maxImportGrowth {
			t.Fatalf("the import grew the peak RSS by %d MiB, over %d MiB", growth>>20, maxImportGrowth>>20)
		}
		waitBodies(t, f.alice.mx, chat.room, chat.ghost, imported)
	})

	t.Run("200 MB chat text", func(t *testing.T) {
		resetPeakRSS(t)
		before := peakRSS(t)
		status, body := postImport(t, f, contact, textBomb)
		growth := peakRSS(t) - before
		t.Logf("peak RSS grew by %d MiB", growth>>20)
		var resp importapi.ErrorResponse
		_ = json.Unmarshal(body, &resp)
		if status != http.StatusRequestEntityTooLarge || resp.ErrCode != "M_TOO_LARGE" ||
			!strings.Contains(resp.Error, "more than 100000 messages") || !strings.Contains(resp.Error, "bridge.import.max_messages") ||
			!strings.Contains(resp.Error, "nothing was imported") {
			t.Fatalf("got %d %s %q; want 413 M_TOO_LARGE naming the cap", status, resp.ErrCode, resp.Error)
		}
		if growth > maxImportGrowth {
			t.Fatalf("the import grew the peak RSS by %d MiB, over %d MiB", growth>>20, maxImportGrowth>>20)
		}
		// Nothing past what the first subtest imported.
		waitBodies(t, f.alice.mx, chat.room, chat.ghost, imported)
	})
}

func postImport(t *testing.T, f *importFixture, contact string, zipData []byte) (int, []byte) {
	t.Helper()
	q := url.Values{"chat": {contact + "@s.whatsapp.net"}, "tz": {"UTC"}}
	req, err := http.NewRequest(http.MethodPost, importcmd.BridgeURL(f.cfg)+importapi.Path+"?"+q.Encode(), bytes.NewReader(zipData))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.cfg.Appservice.ASToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes()
}

// uploadLimitMiB is the test homeserver's upload limit, as the bridge reads it.
func uploadLimitMiB(t *testing.T, f *importFixture) int {
	t.Helper()
	resp, err := f.alice.mx.GetMediaConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.UploadSize >> 20)
}

// zipBomb is an export whose attachment inflates to size bytes of zeros. Deflate encodes
// every MiB of zeros after the first in the same 1,037 bytes, so the stream is built from
// those rather than by compressing gigabytes.
func zipBomb(t *testing.T, chatText, name string, size int64) []byte {
	t.Helper()
	const chunk = 1 << 20
	if size%chunk != 0 {
		t.Fatal("the bomb's size must be whole MiB")
	}
	var stream bytes.Buffer
	fw, err := flate.NewWriter(&stream, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, chunk)
	var marks []int
	for range 3 {
		_, _ = fw.Write(zeros)
		_ = fw.Flush()
		marks = append(marks, stream.Len())
	}
	first, repeat := stream.Bytes()[:marks[0]], stream.Bytes()[marks[0]:marks[1]]
	if !bytes.Equal(repeat, stream.Bytes()[marks[1]:marks[2]]) {
		t.Fatal("deflate no longer encodes each MiB of zeros the same: build the bomb another way")
	}
	var tail bytes.Buffer
	tw, _ := flate.NewWriter(&tail, flate.BestCompression)
	_ = tw.Flush()
	flushed := tail.Len()
	_ = tw.Close()
	final := tail.Bytes()[flushed:] // the empty final block

	var deflated bytes.Buffer
	deflated.Write(first)
	crc := crc32.Update(0, crc32.IEEETable, zeros)
	for range size/chunk - 1 {
		deflated.Write(repeat)
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	deflated.Write(final)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("_chat.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(chatText))
	raw, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(deflated.Len()), UncompressedSize64: uint64(size)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write(deflated.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chatTextBomb is an export whose _chat.txt inflates to about size bytes of one message
// line repeated.
func chatTextBomb(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("_chat.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := "02/01/2024, 22:11 - Anna: lorem ipsum lorem ipsum lorem ipsum lorem ipsum dolor sit amet\n"
	block := []byte(strings.Repeat(line, (1<<20)/len(line)))
	for n := 0; n < size; n += len(block) {
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// resetPeakRSS restarts the kernel's count of this process's peak memory (VmHWM).
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("cannot reset the peak RSS: %v", err)
	}
}

// peakRSS is this process's peak resident memory since the last reset, in bytes. The
// bridge runs in the test's process, so this is the bridge's memory.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
