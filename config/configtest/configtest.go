// Package configtest gives tests of edged's parts their config as the
// daemon gives it: built in code, then completed and checked by
// config.Check as config.Load completes and checks a file. Tests only.
package configtest

import (
	"testing"

	"github.com/edged/edged/config"
)

// Checked completes and checks c with config.Check, as config.Load does a
// file, and fails the test on any problem: a part under test takes its
// config as the daemon gives it, defaults applied and files, escapes and
// patterns resolved.
func Checked(t testing.TB, c config.Config) *config.Config {
	t.Helper()
	if err := config.Check(&c); err != nil {
		t.Fatalf("config.Check: %v", err)
	}
	return &c
}

// Bus is b as config.Check completes it (a Modbus point's address
// 0 is the first register).
func Bus(t testing.TB, b config.Bus) config.Bus {
	t.Helper()
	return Checked(t, config.Config{Modbus: []config.Bus{b}}).Modbus[0]
}

// Serial is s as config.Check completes it.
func Serial(t testing.TB, s config.Serial) config.Serial {
	t.Helper()
	return Checked(t, config.Config{Serial: []config.Serial{s}}).Serial[0]
}

// AT is a as config.Check completes it.
func AT(t testing.TB, a config.ATDev) config.ATDev {
	t.Helper()
	return Checked(t, config.Config{AT: []config.ATDev{a}}).AT[0]
}
