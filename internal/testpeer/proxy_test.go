package testpeer

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestProxyBlackholeHoldsBytesUntilRestore checks the blackhole a fault
// suite relies on: a connection through it stays open, nothing reaches the
// other side while it lasts, and what was sent meanwhile arrives, whole and
// in order, once it ends.
func TestProxyBlackholeHoldsBytesUntilRestore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 4)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	p := StartProxy(t, ln.Addr().String())
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if got := <-lines; got != "before" {
		t.Fatalf("got %q, want before", got)
	}
	p.Blackhole()
	if _, err := c.Write([]byte("during\n")); err != nil {
		t.Fatalf("a blackholed connection refused a write: %v", err)
	}
	select {
	case got := <-lines:
		t.Fatalf("%q got through the blackhole", got)
	case <-time.After(200 * time.Millisecond): // nothing may arrive in this time
	}
	p.Restore()
	select {
	case got := <-lines:
		if got != "during" {
			t.Fatalf("got %q after the blackhole, want during", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("what was sent during the blackhole did not arrive after Restore")
	}
}
