package main

import (
	"net"
	"strings"
	"testing"
)

func TestAPortClashExplainsItselfForRunAndDemo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	cfg := brokerConfig(t, addr)
	for _, c := range []struct {
		name string
		args []string
		fix  string
	}{
		{"run names the listener's address key", []string{"run", "-c", cfg}, `address = "127.0.0.1:1884" in [[broker.listener]] of ` + cfg},
		{"demo names -listen", []string{"demo", "-listen", addr}, "edged demo -listen 127.0.0.1:1884"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := cli(t, c.args...)
			if code != exitError {
				t.Fatalf("exit %d, want 1\n%s", code, errOut)
			}
			for _, want := range []string{
				addr + " is already in use: another MQTT broker (often Mosquitto)",
				"sudo ss -ltnp 'sport = :" + port + "'",
				c.fix,
			} {
				if !strings.Contains(errOut, want) {
					t.Errorf("missing %q in:\n%s", want, errOut)
				}
			}
		})
	}
}
