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

	// A value the decoder refused counts as absent, so that its default
	// stands in and nothing inherits the refused zero.
	if err := complete(&cfg, name, d.ix, d.set, d.bad, d.errs, opts.ProfileDirs); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Check completes and checks a config built in code rather than read from
// a file (tests, the commissioning commands' bus): the defaults
// Load applies and every rule it checks, with the same key paths (no file,
// no line); it loads the files c names and resolves what the parts take, as
// Load does. A key counts as absent while it holds its zero value, except a
// Modbus point's address, where 0 is the first register. Check completes c
// in place; the error is an *Errors.
func Check(c *Config) error {
	set := map[string]bool{}
	for i := range c.Modbus {
		for j := range c.Modbus[i].Devices {
			dp := index(index("modbus", i)+".device", j)
			for k := range c.Modbus[i].Devices[j].Points {
				set[index(dp+".points", k)+".address"] = true
			}
		}
	}
	return complete(c, "", nil, set, map[string]bool{}, nil, nil)
}

// CheckPoint completes and checks one Modbus point built in code (edged
// modbus write builds one from its flags) as Load does a point of a device,
// with the protocol's 125 registers for one read; its address counts as
// given. Problems name the key path "point"; the error is an *Errors.
func CheckPoint(p *Point) error {
	defaultPoint(p)
	v := newValidator("", nil, map[string]bool{"point.address": true}, map[string]bool{}, nil)
	v.point("point", p, maxReadRegisters)
	if len(v.errs) > 0 {
		return &Errors{List: v.errs}
	}
	return nil
}

// complete applies the defaults to a decoded config, validates it and, when
// no problem was found (decodeErrs included), merges the profiles. set holds
// the key paths that were written, bad those the decoder refused.
func complete(c *Config, name string, ix lineIndex, set, bad map[string]bool, decodeErrs []*Error, profileDirs []string) error {
	host, _ := os.Hostname()
	applyDefaults(c, func(p string) bool { return set[p] && !bad[p] }, host)
	v := newValidator(name, ix, set, bad, profileDirs)
	v.config(c)
	if all := append(decodeErrs, v.errs...); len(all) > 0 {
		return &Errors{List: sortErrors(name, all)}
	}
	v.mergeProfiles(c)
	c.Warnings = sortErrors(name, v.warns)
	c.lines = ix
	return nil
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
