package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: the server's
// as a rawSocket, and the client's.
func tcpPair(t *testing.T) (net.Conn, *rawSocket, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	s := newRawSocket(server)
	if s == nil {
		t.Fatal("no raw socket for a TCP connection")
	}
	return server, s, client
}

func TestRawSocketBehavesAsTheConnection(t *testing.T) {
	t.Run("bytes pass both ways unchanged, and the peer's close reads as EOF", func(t *testing.T) {
		_, s, client := tcpPair(t)
		out := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: more than a socket buffer takes at once
		got := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(io.LimitReader(client, int64(len(out)))); got <- b }()
		if n, err := s.Write(out); n != len(out) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, out) {
				t.Fatalf("the peer got %d bytes, not the %d written", len(b), len(out))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the peer did not get the bytes")
		}
		if _, err := client.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = client.Close()
		b, err := io.ReadAll(s)
		if string(b) != "hello" || err != nil {
			t.Fatalf("read %q, %v; want hello then EOF", b, err)
		}
	})
	t.Run("a read past its deadline ends with a timeout", func(t *testing.T) {
		server, s, _ := tcpPair(t)
		_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var ne net.Error
		if _, err := s.Read(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})
	t.Run("a write to a peer that stopped reading ends at its deadline", func(t *testing.T) {
		server, s, _ := tcpPair(t)
		_ = server.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		var ne net.Error
		if _, err := s.Write(make([]byte, 32<<20)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})
	t.Run("a read waiting when the connection is closed ends with net.ErrClosed", func(t *testing.T) {
		server, s, _ := tcpPair(t)
		done := make(chan error, 1)
		go func() { _, err := s.Read(make([]byte, 10)); done <- err }()
		// Close ends the read whether or not it is waiting yet.
		_ = server.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("err = %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the read did not end when the connection closed")
		}
	})
	t.Run("a connection that is not plain TCP keeps its own path", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if newRawSocket(a) != nil {
			t.Fatal("a raw socket for a net.Pipe")
		}
	})
}

// A message costs one read and one write of the raw socket: neither may
// allocate, or every message feeds the garbage collector (the profile of
// 10k msg/s put these two at 12 % of the broker's allocations).
func TestRawSocketReadsAndWritesWithoutAllocating(t *testing.T) {
	_, s, client := tcpPair(t)
	msg := []byte("a reading of 32 bytes, as sent..")
	in := make([]byte, 64)
	back := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		if n, err := io.ReadFull(s, in[:len(msg)]); n != len(msg) || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
		if n, err := s.Write(in[:len(msg)]); n != len(msg) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if _, err := io.ReadFull(client, back); err != nil {
			t.Fatal(err)
		}
	})
	// The client's side is an ordinary net.Conn, which allocates nothing
	// per call either; so the whole round trip must be free.
	if allocs != 0 {
		t.Fatalf("%.1f allocations per read and write, want 0", allocs)
	}
}
