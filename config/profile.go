package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// validProfileName keeps a profile name a plain file name: it is joined to
// directories, so "../" or "/" must never get through.
func validProfileName(name string) bool {
	if name == "" || name[0] == '.' || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isBareByte(c) || c == '.') {
			return false
		}
	}
	return true
}

// LoadProfile finds NAME.toml in the first of dirs that has it, and reads
// and checks it as strictly as edged.toml. It returns the profile (its
// points with defaults applied) and the file it came from. A profile that
// exists but has mistakes gives an *Errors located in that file; one that
// is nowhere gives an error that wraps fs.ErrNotExist.
func LoadProfile(name string, dirs []string) (*Profile, string, error) {
	if !validProfileName(name) {
		return nil, "", fmt.Errorf("%q is not a profile name (letters, digits, '.', '_' and '-', not starting with '.')", name)
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name+".toml")
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, path, readError(path, "profile", err)
		}
		p, err := parseProfile(path, data)
		return p, path, err
	}
	if len(dirs) == 0 {
		return nil, "", notFound(fmt.Sprintf("profile %q not found: no profile directories to look in", name))
	}
	hint := ""
	if s := suggestProfile(name, profileNames(dirs)); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, "", notFound(fmt.Sprintf("profile %q not found in %s%s", name, strings.Join(dirs, ", "), hint))
}

// notFound is an error that reads as itself and matches fs.ErrNotExist.
type notFound string

func (e notFound) Error() string { return string(e) }
func (e notFound) Unwrap() error { return fs.ErrNotExist }

// suggestProfile is suggest, plus names that contain the one asked for
// (sdm120 for eastron-sdm120).
func suggestProfile(name string, names []string) string {
	if s := suggest(name, names); s != "" {
		return s
	}
	for _, n := range names {
		if len(name) >= 3 && strings.Contains(strings.ToLower(n), strings.ToLower(name)) {
			return n
		}
	}
	return ""
}

// profileNames lists the profiles present in dirs, for suggestions.
func profileNames(dirs []string) []string {
	var names []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if n, ok := strings.CutSuffix(e.Name(), ".toml"); ok && !e.IsDir() {
				names = append(names, n)
			}
		}
	}
	return names
}

// parseProfile checks a profile file. Its points are checked as a device's
// are, with key paths relative to the profile (points[3].type).
func parseProfile(path string, data []byte) (*Profile, error) {
	var p Profile
	d, synErr := decodeFile(path, data, &p)
	if synErr != nil {
		return nil, &Errors{List: []*Error{synErr}}
	}
	for i := range p.Points {
		defaultPoint(&p.Points[i])
	}
	v := newValidator(path, d.ix, d.set, d.bad, nil)
	v.points("points", p.Points, maxReadRegisters)
	v.profileLine(&p)
	if len(p.Points) == 0 {
		v.errorf("points", "missing (a profile is a list of points)")
	}
	if all := append(d.errs, v.errs...); len(all) > 0 {
		return nil, &Errors{List: sortErrors(path, all)}
	}
	return &p, nil
}
