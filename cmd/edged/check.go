package main

import (
	"fmt"
	"io"

	"github.com/edged/edged/config"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "[-c FILE]", `
Validate a config file: every unknown key, wrong type and invalid value is
listed with its file, line and key path. The files it names (certificates,
keys, CAs, users, ACL, password) are read and parsed too, so a file that
check accepts is one run starts with. Doubts that do not make the file
invalid (an address that looks like 4xxxx notation, a forward rule that
matches no topic the devices publish) are printed as warnings. Run it as
the user edged runs as. Exits 0 when the file is valid, 1 when it is not.`, stderr)
	path := configFlag(fs)
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return exitError
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok (gateway %q, %d listener(s), %d device(s), uplink %s)\n",
		*path, cfg.Gateway.ID, len(cfg.Broker.Listeners), countDevices(cfg), uplinkSummary(cfg))
	return exitOK
}

func countDevices(cfg *config.Config) int {
	n := len(cfg.Serial) + len(cfg.AT)
	for _, b := range cfg.Modbus {
		n += len(b.Devices)
	}
	return n
}

func uplinkSummary(cfg *config.Config) string {
	if cfg.Uplink == nil {
		return "off"
	}
	if cfg.Uplink.URL != "" {
		return cfg.Uplink.URL
	}
	return fmt.Sprint(cfg.Uplink.URLs)
}
