package config

import (
	"strings"
	"testing"
)

func TestUplinkDeadLinkAndDeadLetterKeys(t *testing.T) {
	got := errorLines(t, `[uplink]
url = "mqtt://127.0.0.1:1883"
ack_timeout = "0s"
dead_letter_after = 0
`)
	want := []string{
		"edged.toml:3: uplink.ack_timeout: must be longer than 0s",
		"edged.toml:4: uplink.dead_letter_after: 0 is out of range 1..100",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
