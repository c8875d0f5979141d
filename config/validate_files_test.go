package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAStateDirThatCannotBeADirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ stateDir, want string }{
		{file, fmt.Sprintf("edged.toml:2: gateway.state_dir: %s is a file, not a directory", file)},
		{file + "/edged", fmt.Sprintf("edged.toml:2: gateway.state_dir: %s/edged cannot be created: %s is a file, not a directory", file, file)},
	} {
		got := errorLines(t, fmt.Sprintf("[gateway]\nstate_dir = %q\n", c.stateDir))
		if strings.Join(got, "\n") != c.want {
			t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), c.want)
		}
	}
	if _, err := parseTest(t, fmt.Sprintf("[gateway]\nstate_dir = %q\n", filepath.Join(dir, "not/yet"))); err != nil {
		t.Errorf("a state_dir that run would create is refused: %v", err)
	}
}
