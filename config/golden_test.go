package config

import (
	"os"
	"testing"
)

// TestGoldenMistakes loads a file full of mistakes and compares the whole
// report with testdata/mistakes.golden. Set EDGED_UPDATE_GOLDEN=1 to
// rewrite the golden file after an intended change, then review the diff.
func TestGoldenMistakes(t *testing.T) {
	_, err := LoadWith("testdata/mistakes.toml", Options{})
	if err == nil {
		t.Fatal("loaded without error")
	}
	got := err.Error() + "\n"
	if os.Getenv("EDGED_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile("testdata/mistakes.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/mistakes.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
}
