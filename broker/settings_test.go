package broker

import (
	"strings"
	"testing"

	"github.com/edged/edged/config"
)

// TestAListenerTakesAllowAnonymousAsConfigSetIt: config.Load works out the
// anonymous default (loopback without users_file) once; the broker reads
// the value and works out nothing itself.
func TestAListenerTakesAllowAnonymousAsConfigSetIt(t *testing.T) {
	no, yes := false, true
	specs, err := listenerSpecs(config.Broker{Listeners: []config.Listener{
		{Type: "tcp", Address: "127.0.0.1:0", AllowAnonymous: &no},
		{Type: "tcp", Address: "0.0.0.0:0", AllowAnonymous: &yes},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].auth.AllowAnonymous || !specs[1].auth.AllowAnonymous {
		t.Fatalf("allow_anonymous %v, %v; want false, true as configured", specs[0].auth.AllowAnonymous, specs[1].auth.AllowAnonymous)
	}
	_, err = listenerSpecs(config.Broker{Listeners: []config.Listener{{Type: "tcp", Address: "127.0.0.1:0"}}})
	if want := "broker.listener[0]: allow_anonymous not set (a config from config.Load or config.DefaultBroker has it)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a listener without allow_anonymous: err %v, want %q", err, want)
	}
}
