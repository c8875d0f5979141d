package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoldenMistakes loads each file full of mistakes, testdata/X.toml
// beside a testdata/X.golden, and compares the whole report with the golden
// file. Set EDGED_UPDATE_GOLDEN=1 to rewrite the golden files after an
// intended change, then review the diff.
func TestGoldenMistakes(t *testing.T) {
	goldens, _ := filepath.Glob("testdata/*.golden")
	if len(goldens) < 2 {
		t.Fatalf("golden files: %v", goldens)
	}
	for _, golden := range goldens {
		file := strings.TrimSuffix(golden, ".golden") + ".toml"
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := LoadWith(file, Options{})
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := err.Error() + "\n"
			if os.Getenv("EDGED_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("report:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
