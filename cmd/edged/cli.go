package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/edged/edged/config"
)

const defaultConfig = "/etc/edged/edged.toml"

const mainUsage = `Usage: edged <command> [options]

edged is an edge gateway: it polls Modbus, serial-line and AT-command devices,
publishes every reading to its embedded MQTT broker and forwards chosen topics
upstream through a buffer that loses nothing while the uplink is down.

Commands:
  run      run the gateway with a config file (default ` + defaultConfig + `)
  demo     run the gateway on simulated devices, no hardware or config needed
  check    validate a config file and list every error in it
  modbus   commissioning: scan a bus for unit ids, read and decode registers, write one
  poll     poll the config's Modbus devices and print every point, without the broker
  profiles list the device profiles (register maps) and the factory settings they state
  passwd   add or update a user in a broker users file (mosquitto_passwd format)
  version  print the version, commit and Go version

Run 'edged <command> -h' for the options of a command.

Examples:
  edged demo                          # then: mosquitto_sub -v -t 'demo/#'
  edged check -c /etc/edged/edged.toml
  edged run -c /etc/edged/edged.toml
`

// exit codes
const (
	exitOK    = 0
	exitError = 1 // the command failed (bad config, port in use ...)
	exitUsage = 2 // the command line was wrong
)

// run is main without the process: it parses args, runs one command and
// returns the exit code. Tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	case "-v", "-version", "--version", "version":
		return cmdVersion(rest, stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "passwd":
		return cmdPasswd(rest, stdin, stdout, stderr)
	case "modbus":
		return cmdModbus(ctx, rest, stdout, stderr)
	case "poll":
		return cmdPoll(ctx, rest, stdout, stderr)
	case "profiles":
		return cmdProfiles(rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "edged: unknown command %q\n\n%s", cmd, mainUsage)
		return exitUsage
	}
}

// newFlags makes a FlagSet whose -h prints usage (a synopsis and a
// paragraph) followed by the options.
func newFlags(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("edged "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: edged %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(about))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(stderr, "\nOptions:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse runs fs.Parse and turns its outcome into an exit code: -1 to go on.
func parse(fs *flag.FlagSet, args []string, wantArgs int) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if wantArgs >= 0 && fs.NArg() != wantArgs {
		fmt.Fprintf(fs.Output(), "%s: expected %d argument(s), got %d\n\n", fs.Name(), wantArgs, fs.NArg())
		fs.Usage()
		return exitUsage
	}
	return -1
}

func configFlag(fs *flag.FlagSet) *string {
	p := new(string)
	fs.StringVar(p, "c", defaultConfig, "config `file`")
	fs.StringVar(p, "config", defaultConfig, "config `file` (same as -c)")
	return p
}

// loadConfig loads the file -c names. On error it prints every problem
// (file:line: key: message) and returns nil: the command exits exitError.
func loadConfig(path string, stderr io.Writer) *config.Config {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil
	}
	return cfg
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", "Print edged's version, the commit it was built from and the Go version.", stderr)
	if code := parse(fs, args, 0); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "edged %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
