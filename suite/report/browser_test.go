package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's Chromium, or skips the test saying how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("Chromium is not installed: `apt-get install chromium` (Debian's package, as .ci/run installs it) runs the browser test")
	return ""
}

// artifactDir is where the browser test leaves the report and its
// screenshot: $MPPWS_REPORT_ARTIFACTS when set, else the test's temporary
// directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MPPWS_REPORT_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// headless runs Chromium on page with extra flags. The flags are the ones
// this closed network needs: nothing in the background may reach out.
func headless(t *testing.T, bin string, extra ...string) []byte {
	t.Helper()
	// A bound on a hung browser, not a timed assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	return out
}

// TestReportInABrowser renders report.html in headless Chromium: its
// script must filter the cases as the query asks and count what it shows,
// and a screenshot of the filtered page is kept beside the report.
func TestReportInABrowser(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	s := mixedRun(t)
	if err := s.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	page := (&url.URL{Scheme: "file", Path: filepath.Join(dir, HTMLFile)}).String()

	// Filtered to the failures by the query, as a link from CI would open it.
	page += "?verdict=FAILED,NOT%20RUN"
	dom := string(headless(t, bin, "--dump-dom", page))
	if !strings.Contains(dom, `data-ready="true"`) {
		t.Fatalf("the report's script did not finish:\n%.2000s", dom)
	}
	want := countOf(s, "", Failed) + countOf(s, "", NotRun)
	if got := regexp.MustCompile(`<span id="shown">(\d+)</span>`).FindStringSubmatch(dom); got == nil || got[1] != fmt.Sprint(want) {
		t.Errorf("shown count %v, want %d", got, want)
	}
	hidden := regexp.MustCompile(`<article class="case [^"]*" id="([^"]+)" data-verdict="([^"]+)" data-area="[^"]*" hidden="">`)
	shown := regexp.MustCompile(`<article class="case [^"]*" id="([^"]+)" data-verdict="([^"]+)" data-area="[^"]*">`)
	for _, m := range hidden.FindAllStringSubmatch(dom, -1) {
		if v := Verdict(m[2]); v == Failed || v == NotRun {
			t.Errorf("%s (%s) hidden by the filter", m[1], v)
		}
	}
	if n := len(shown.FindAllStringSubmatch(dom, -1)); n != want {
		t.Errorf("%d cases left visible, want %d", n, want)
	}
	if n := len(hidden.FindAllStringSubmatch(dom, -1)); n != len(s.Results)-want {
		t.Errorf("%d cases hidden, want %d", n, len(s.Results)-want)
	}
	for _, v := range Verdicts {
		cell := fmt.Sprintf(`<td class="%s" data-verdict="%s" data-count="%d">`, map[bool]string{true: verdictClass(v), false: "zero"}[countOf(s, "", v) > 0], v, countOf(s, "", v))
		if !strings.Contains(dom, cell) {
			t.Errorf("the rendered matrix lacks %s", cell)
		}
	}

	shot := filepath.Join(dir, "report.png")
	headless(t, bin, "--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars", page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %v, want 1280×2000", b)
	}
	if !hasColour(img, 0xb7, 0x1c, 0x1c) {
		t.Error("the screenshot shows no FAILED red: the page did not paint")
	}
	t.Logf("report and screenshot in %s", dir)
}

// hasColour reports whether any pixel of img is r, g, b.
func hasColour(img image.Image, r, g, b uint8) bool {
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if uint8(pr>>8) == r && uint8(pg>>8) == g && uint8(pb>>8) == b {
				return true
			}
		}
	}
	return false
}
