package bridge

import (
	"strings"
	"testing"

	"github.com/edged/edged/config"
)

func TestRulesNameTheKeyInErrors(t *testing.T) {
	two := 2
	cases := []struct {
		name string
		cfg  config.Uplink
		want string
	}{
		{"a bad forward filter names forward[1].local",
			config.Uplink{Forward: []config.Forward{{Local: "a/#"}, {Local: "a/#/b"}}}, "uplink.forward[1].local"},
		{"a wildcard in remote_prefix is refused",
			config.Uplink{Forward: []config.Forward{{Local: "a/#", RemotePrefix: "x/+/"}}}, "uplink.forward[0].remote_prefix"},
		{"qos 2 on a forward rule is refused",
			config.Uplink{Forward: []config.Forward{{Local: "a/#", QoS: &two}}}, "uplink.forward[0]: qos 2"},
		{"a bad downlink filter names downlink[0].remote",
			config.Uplink{Downlink: []config.Downlink{{Remote: "x#"}}}, "uplink.downlink[0].remote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err1 := parseForward(c.cfg.Forward)
			_, err2 := parseDownlink(c.cfg.Downlink)
			err := err1
			if err == nil {
				err = err2
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestLocalTopic(t *testing.T) {
	rules, err := parseDownlink([]config.Downlink{
		{Remote: "sites/a/pi-01/+/+/set", StripPrefix: "sites/a/"},
		{Remote: "fleet/cmd/#", StripPrefix: "fleet/cmd/", LocalPrefix: "pi-01/cmd/"},
		{Remote: "whole/#", StripPrefix: "whole/#"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, remote, want string
		ok                 bool
	}{
		{"a set command loses the site prefix", "sites/a/pi-01/meter1/relay/set", "pi-01/meter1/relay/set", true},
		{"a local prefix replaces the stripped one", "fleet/cmd/reboot", "pi-01/cmd/reboot", true},
		{"a topic no rule takes is not mapped", "sites/b/pi-01/x/y/set", "", false},
		{"a strip prefix that does not apply leaves the topic whole", "whole/x", "whole/x", true},
		{"stripping everything leaves no topic to publish", "fleet/cmd/", "pi-01/cmd/", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := localTopic(rules, c.remote)
			if got != c.want || ok != c.ok {
				t.Errorf("localTopic(%q) = %q, %v; want %q, %v", c.remote, got, ok, c.want, c.ok)
			}
		})
	}
	t.Run("a topic that maps to nothing is refused", func(t *testing.T) {
		r, _ := parseDownlink([]config.Downlink{{Remote: "x/#", StripPrefix: "x/y"}})
		if got, ok := localTopic(r, "x/y"); ok {
			t.Errorf("localTopic mapped x/y to %q", got)
		}
	})
}

// FuzzLocalTopic feeds topics as an upstream broker could send them: the
// mapping must never panic nor produce a topic the local broker refuses.
func FuzzLocalTopic(f *testing.F) {
	for _, s := range []string{"sites/a/pi-01/m/p/set", "", "/", "sites/a/", "#", "+", "sites/a/\x00", "$SYS/x", "a//b"} {
		f.Add(s)
	}
	rules, err := parseDownlink([]config.Downlink{
		{Remote: "sites/a/#", StripPrefix: "sites/a/"},
		{Remote: "+/cmd/+", LocalPrefix: "local/"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		got, ok := localTopic(rules, remote)
		if ok && (got == "" || strings.ContainsAny(got, "+#\x00")) {
			t.Errorf("localTopic(%q) = %q, not a topic name", remote, got)
		}
	})
}

func BenchmarkInterceptNoMatch(b *testing.B) {
	rules, _ := parseForward([]config.Forward{{Local: "pi-01/meter1/#"}, {Local: "pi-01/+/temperature"}})
	b.ReportAllocs()
	for b.Loop() {
		if forwardFor(rules, "pi-01/weather/humidity") != nil {
			b.Fatal("matched")
		}
	}
}
