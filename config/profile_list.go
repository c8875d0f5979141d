package config

import (
	"slices"
)

// ListedProfile is one profile found in the profile directories: the one
// LoadProfile would use for its name, or why it cannot be used.
type ListedProfile struct {
	Name    string
	Path    string
	Profile *Profile // nil when Err is set
	Err     error
}

// ListProfiles returns every profile in dirs, sorted by name. A name found
// in several directories is listed once, from the first, as LoadProfile
// finds it.
func ListProfiles(dirs []string) []ListedProfile {
	names := profileNames(dirs)
	slices.Sort(names)
	names = slices.Compact(names)
	var out []ListedProfile
	for _, n := range names {
		if !validProfileName(n) {
			continue
		}
		p, path, err := LoadProfile(n, dirs)
		out = append(out, ListedProfile{Name: n, Path: path, Profile: p, Err: err})
	}
	return out
}
