package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/edged/edged/config"
)

// dirsFlag collects repeated -dir options; it is a flag.Value.
type dirsFlag []string

func (d *dirsFlag) String() string     { return strings.Join(*d, ", ") }
func (d *dirsFlag) Set(v string) error { *d = append(*d, v); return nil }

func cmdProfiles(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("profiles", "[-dir DIR]...", `
List the device profiles (register maps) that profile = "NAME" can use,
with each one's description, the factory line settings it states and the
file it comes from. Profiles are looked for, first match wins, in
/etc/edged/profiles, /usr/share/edged/profiles, then configs/profiles
next to the binary and in the working directory; -dir adds a directory
searched before those. Exits 1 when a profile has mistakes.`, stderr)
	var extra dirsFlag
	fs.Var(&extra, "dir", "also look in this `directory`, first (repeatable)")
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	dirs := append([]string(extra), config.DefaultProfileDirs()...)
	list := config.ListProfiles(dirs)
	if len(list) == 0 {
		fmt.Fprintf(stderr, "edged profiles: no profiles in %s\n", strings.Join(dirs, ", "))
		return exitError
	}
	return printProfiles(stdout, stderr, list)
}

func printProfiles(stdout, stderr io.Writer, list []config.ListedProfile) int {
	code := exitOK
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tfactory settings\tpoints\tdescription")
	for _, l := range list {
		if l.Err != nil {
			code = exitError
			fmt.Fprintf(tw, "%s\t-\t-\tcannot be used, see below\n", l.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.Name, factorySettings(l.Profile), len(l.Profile.Points), l.Profile.Description)
	}
	tw.Flush()
	var from []string
	for _, l := range list {
		if l.Err != nil {
			fmt.Fprintln(stderr, l.Err)
		}
		if dir := filepath.Dir(l.Path); l.Path != "" && !slices.Contains(from, dir) {
			from = append(from, dir)
		}
	}
	fmt.Fprintf(stdout, "\nfrom %s\n", strings.Join(from, ", "))
	return code
}

// factorySettings is a profile's stated line settings and unit, as a
// datasheet writes them: "9600 8N1, unit 1".
func factorySettings(p *config.Profile) string {
	var parts []string
	switch {
	case p.Baud != 0 && p.Parity != "" && p.StopBits != 0:
		parts = append(parts, fmt.Sprintf("%d 8%s%d", p.Baud, p.Parity, p.StopBits))
	case p.Baud != 0:
		parts = append(parts, fmt.Sprintf("%d baud", p.Baud))
	}
	if p.Unit != 0 {
		parts = append(parts, fmt.Sprintf("unit %d", p.Unit))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
