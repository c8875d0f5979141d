package testpeer

import (
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// chromiumArgs keep headless Chromium off the network and the machine's
// profile: only the page the test names is loaded.
func chromiumArgs(t testing.TB) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
}

// Chromium runs Debian's headless chromium once on url with extra flags
// (such as --dump-dom or --screenshot=FILE) and returns its standard
// output. budget is the virtual time the page's scripts get to run before
// the DOM is dumped or the picture taken (a page that fetches its data
// after load needs some). It skips the test when chromium is not
// installed (fails it when EDGED_REQUIRE_PEERS=1).
func Chromium(t testing.TB, url string, budget time.Duration, extra ...string) string {
	t.Helper()
	bin := Need(t, "chromium", "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(chromiumArgs(t), "--virtual-time-budget="+strconv.Itoa(int(budget/time.Millisecond)))
	args = append(append(args, extra...), url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr Output
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}
