package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol: datagrams on the unix socket
// named by NOTIFY_SOCKET. Outside systemd it does nothing.
type notifier struct {
	socket   string
	watchdog time.Duration // 0: systemd did not ask for pings
}

// newNotifier reads the environment systemd sets for Type=notify services.
func newNotifier(getenv func(string) string) *notifier {
	n := &notifier{socket: getenv("NOTIFY_SOCKET")}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n // the watchdog is meant for another process
	}
	if us, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// send delivers one state string such as "READY=1".
func (n *notifier) send(state string) error {
	if n.socket == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd notify %s: %w", n.socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd notify %s: %w", n.socket, err)
	}
	return nil
}

// pingWatchdog sends WATCHDOG=1 at half the interval systemd asked for,
// while healthy reports true, until ctx ends.
func (n *notifier) pingWatchdog(ctx context.Context, healthy func() bool) {
	if n.socket == "" || n.watchdog <= 0 {
		return
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				_ = n.send("WATCHDOG=1")
			}
		}
	}
}
