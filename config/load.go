package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Options changes how a config is loaded.
type Options struct {
	// ProfileDirs are searched in order for profiles/NAME.toml when a
	// Modbus device says profile = "NAME".
	ProfileDirs []string
}

// DefaultProfileDirs returns where profiles are looked for, first match
// wins: the administrator's /etc/edged/profiles, the packaged
// /usr/share/edged/profiles, then configs/profiles next to the binary and in
// the working directory (a source checkout).
func DefaultProfileDirs() []string {
	dirs := []string{"/etc/edged/profiles", "/usr/share/edged/profiles"}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "configs", "profiles"))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, filepath.Join(wd, "configs", "profiles"))
	}
	out := dirs[:0]
	for _, d := range dirs {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Load reads, checks and completes the config file at path, looking for
// profiles in DefaultProfileDirs. On failure the error is an *Errors listing
// every problem in the file.
func Load(path string) (*Config, error) {
	return LoadWith(path, Options{ProfileDirs: DefaultProfileDirs()})
}

// LoadWith is Load with options.
func LoadWith(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, "config", err)
	}
	return ParseWith(path, data, opts)
}

// readError reports a config or profile file that cannot be read. The
// path is left out of an *os.PathError, since the message already starts
// with the file name.
func readError(path, what string, err error) *Errors {
	reason := err
	var pe *os.PathError
	if errors.As(err, &pe) {
		reason = pe.Err
	}
	return &Errors{List: []*Error{{File: path, Msg: fmt.Sprintf("cannot read %s: %v", what, reason), err: err}}}
}

// Parse checks and completes a config held in memory; name is used as the
// file name in errors. Profiles are looked for in DefaultProfileDirs.
func Parse(name string, data []byte) (*Config, error) {
	return ParseWith(name, data, Options{ProfileDirs: DefaultProfileDirs()})
}

// ParseWith is Parse with options.
func ParseWith(name string, data []byte, opts Options) (*Config, error) {
	var cfg Config
	d, synErr := decodeFile(name, data, &cfg)
	if synErr != nil {
		return nil, &Errors{List: []*Error{synErr}}
	}
	cfg.File = name

	host, _ := os.Hostname()
	// A value the decoder refused counts as absent, so that its default
	// stands in and nothing inherits the refused zero.
	applyDefaults(&cfg, func(p string) bool { return d.set[p] && !d.bad[p] }, host)

	v := newValidator(name, d.ix, d.set, d.bad, opts.ProfileDirs)
	v.config(&cfg)

	all := append(d.errs, v.errs...)
	if len(all) > 0 {
		return nil, &Errors{List: sortErrors(name, all)}
	}
	v.mergeProfiles(&cfg)
	cfg.Warnings = sortErrors(name, v.warns)
	cfg.lines = d.ix
	return &cfg, nil
}

// Errorf is a problem at a key path of the config, located as a loading
// error is (file:line: key.path: message), for the few problems only a
// running part can see, such as a listen address another program holds.
func (c *Config) Errorf(path string, err error, format string, args ...any) *Error {
	return &Error{File: c.File, Line: c.lines.line(path), Path: path, Msg: fmt.Sprintf(format, args...), err: err}
}

// decodeFile parses the text and decodes it into dst, a pointer to a
// struct. The decoder it returns holds the line index, the keys present and
// the problems found; a syntax error is returned instead, alone.
func decodeFile(name string, data []byte, dst any) (*decoder, *Error) {
	doc, ix, synErr := parseTOML(name, data)
	if synErr != nil {
		return nil, synErr
	}
	d := newDecoder(name, ix)
	d.table("", doc, reflect.ValueOf(dst).Elem())
	return d, nil
}

// parseTOML parses the text into a generic map and indexes its lines. A
// syntax error stops everything: nothing after it can be trusted.
func parseTOML(name string, data []byte) (map[string]any, lineIndex, *Error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, &Error{File: name, Line: pe.Position.Line, Msg: "TOML syntax: " + strings.TrimSuffix(pe.Message, "."), err: err}
		}
		return nil, nil, &Error{File: name, Msg: "TOML syntax: " + err.Error(), err: err}
	}
	if doc == nil {
		doc = map[string]any{}
	}
	return doc, indexLines(string(data)), nil
}
