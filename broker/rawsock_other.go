//go:build !linux

package broker

import "net"

// rawSocket is the Linux fast path of a TCP connection's reads and writes
// (rawsock_linux.go); elsewhere connections keep net.Conn's own.
type rawSocket struct{ net.Conn }

func newRawSocket(net.Conn) *rawSocket { return nil }
