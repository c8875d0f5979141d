package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// portClash reports whether err is a listener that could not bind because
// another program holds its address, and that address.
func portClash(err error) (addr string, ok bool) {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return "", false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String(), true
	}
	return "", true
}

// explainClash tells a user whose broker port is taken how to find the
// program that holds it and how to move edged instead; fix says where
// edged's port is set for the command that failed.
func explainClash(w io.Writer, addr, fix string) {
	port := "1883"
	if _, p, err := net.SplitHostPort(addr); err == nil {
		port = p
	} else {
		addr = "the broker's port"
	}
	fmt.Fprintf(w, `
%s is already in use: another MQTT broker (often Mosquitto) or a second edged holds it.
  See which program:  sudo ss -ltnp 'sport = :%s'
  Then stop it (for Mosquitto: sudo systemctl stop mosquitto), or move edged to a free port: %s.
`, addr, port, fix)
}
