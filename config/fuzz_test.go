package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// fuzzSeeds adds every TOML file the package and the repository ship.
func fuzzSeeds(f *testing.F) {
	for _, pattern := range []string{"testdata/*.toml", "testdata/profiles/*.toml", "../configs/*.toml", "../configs/profiles/*.toml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a = [{b = 1,\n c = '''x'''},\n]\n[[a.d]]\n"))
	f.Add([]byte("[[modbus]]\n[[modbus.device]]\npoints = [{ name = \"\\u00e9\" }]\n\"k\\\"q\" = 1\n"))
}

// FuzzParse feeds arbitrary text to the loader: it must never panic, must
// answer with a config or an *Errors naming the file, and every line it
// cites must exist.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWith("fuzz.toml", data, Options{ProfileDirs: []string{"testdata/profiles"}})
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("error %T %v is not a non-empty *Errors", err, err)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range errs.List {
			if e.File == "fuzz.toml" && (e.Line < 0 || e.Line > lines) {
				t.Fatalf("line %d of a %d-line file: %v", e.Line, lines, e)
			}
		}
	})
}

// FuzzDecoderMatchesTOML checks that whatever the strict decoder accepts,
// the TOML library decodes to the same struct: the walker is a stricter
// front of the library, never a different reading of the file.
func FuzzDecoderMatchesTOML(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, errs := decodeOnly(string(data))
		if len(errs) > 0 {
			return
		}
		var want Config
		if _, err := toml.Decode(string(data), &want); err != nil {
			t.Fatalf("accepted by the decoder, refused by the library: %v", err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("decoded\n%+v\nlibrary\n%+v", got, &want)
		}
	})
}

// FuzzLineIndex runs the line locator on arbitrary bytes, valid TOML or not.
func FuzzLineIndex(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Count(string(data), "\n") + 1
		for p, n := range indexLines(string(data)) {
			if n < 1 || n > lines {
				t.Fatalf("%s at line %d of %d", p, n, lines)
			}
		}
	})
}

// FuzzUnescape never panics and round-trips plain text.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`\r\n`, `\x02\xff`, `a\\b`, `\`, `\x`, `\x1`, "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Unescape(s)
		if err == nil && !strings.Contains(s, `\`) && string(b) != s {
			t.Fatalf("Unescape(%q) = %q", s, b)
		}
	})
}
