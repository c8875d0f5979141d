// Package config reads edged.toml strictly: every key is known, typed and
// checked, and every mistake in a file is reported at once with its file,
// line and key path. Defaults are applied in one place, applyDefaults.
//
// It does not open ports, files named by the config or sockets: that is the
// job of the part that uses them.
package config
