//go:build faults

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// BinEnv names the environment variable with the edged binary to test
// (`make powercut` and `make chaos` set it to the one `make build` made);
// without it the suite builds one.
const BinEnv = "EDGED_BIN"

// DurabilityEnv sets [buffer] durability in edged's config; unset, the key
// is left out and edged's default is what the suites prove.
const DurabilityEnv = "EDGED_FAULT_DURABILITY"

// edgedBin is the binary under test.
var edgedBin string

func TestMain(m *testing.M) {
	edgedBin = os.Getenv(BinEnv)
	var dir string
	if edgedBin == "" {
		var err error
		if dir, err = os.MkdirTemp("", "edged-faults-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		edgedBin = filepath.Join(dir, "edged")
		build := exec.Command("go", "build", "-o", edgedBin, "../cmd/edged")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building edged:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// envInt reads a whole number from the environment, or def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}
