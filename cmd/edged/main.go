// Command edged is the edge gateway daemon: it polls serial and Modbus
// devices, publishes every reading to its embedded MQTT broker and forwards
// chosen topics upstream through a store-and-forward buffer.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Set at build time by the Makefile (-X main.version=... -X main.commit=...).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
