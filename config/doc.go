// Package config reads edged.toml strictly: every key is known, typed and
// checked, and every mistake in a file is reported at once with its file,
// line and key path. Defaults are applied in one place, applyDefaults.
//
// Loading goes in four steps. The TOML library parses the text into a
// generic map (a syntax error stops here, with its line). A decoder walks
// that map against the toml tags of Config, filling the structs and
// recording unknown keys (with the key probably meant) and values of the
// wrong type without stopping at the first. applyDefaults fills what the
// file left out. Finally each section is validated by its own method. A
// small line index of the text gives every problem its line. Modbus devices
// that name a profile get the profile's points, from the first profile
// directory that has it; a profile is checked as strictly as the config.
// Once every section is valid, the topics the devices publish are compared:
// two devices on one topic is an error, an uplink rule that reaches no
// device a warning.
//
// config owns every rule a part would refuse, so that a config `edged
// check` accepts is one `edged run` starts with. That includes the files a
// config names: certificates, keys and CAs are loaded (tlsfiles), users and
// ACL files parsed (mqttauth), the uplink's password file read. What a
// part would otherwise work out itself travels in the Config too, in fields
// that are no TOML keys: a listener's loaded files and allow_anonymous, the
// uplink's password, a serial device's decoded escapes and compiled
// patterns, an AT module's trimmed commands and compiled patterns, a bus's
// transport (and Bus.Target), a point's rounding (Point.Decimals). The parts
// convert and allocate; they read no file named in the config and check
// nothing again. Check does for a config built in code (tests, the
// commissioning commands) what Load does for a file. config does not
// open ports, serial devices or sockets: a device that is absent now may be
// plugged in later, and adapters retry.
package config
