package bridge

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// TestBatchConnKeepsWhatArrivedBeforeAReset is the TLS refusal that read
// "i/o timeout" about one run in 30: the upstream sends its reason (a TLS
// alert "certificate required"), then resets the connection before edged's
// CONNECT is written. The failed write must not hide the reason that is
// already waiting to be read.
func TestBatchConnKeepsWhatArrivedBeforeAReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialled, reset := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reset)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		<-dialled
		_, _ = c.Write([]byte("the reason"))
		_ = c.(*net.TCPConn).SetLinger(0) // close with a reset, as a refusing server may
		c.Close()
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	close(dialled)
	b := newBatchConn(raw, writeTimeout)
	defer b.Close()
	<-reset
	testpeer.Eventually(t, 10*time.Second, "a write failing on the reset connection", func() bool {
		_, err := b.Write([]byte("CONNECT"))
		return err != nil
	})
	got := make([]byte, 64)
	n, err := b.Read(got)
	if string(got[:n]) != "the reason" {
		t.Fatalf("read %q, %v; want what the server sent before the reset", got[:n], err)
	}
	if _, err = b.Read(got); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after the data, read error %v; want the end of the connection, not a timeout", err)
	}
}

// TestBatchConnWakesTheReaderAfterAWriteTimeout: on a link that has gone
// silent, a write that times out must end a blocked read too, and the read
// must say that the write failed.
func TestBatchConnWakesTheReaderAfterAWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		// Never read, never write: a blackhole.
		t.Cleanup(func() { c.Close() })
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := newBatchConn(raw, 200*time.Millisecond)
	defer b.Close()
	read := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 1))
		read <- err
	}()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := b.Write(chunk); err != nil {
			break
		}
	}
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("read returned no error")
		}
		t.Logf("read: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the read was not woken within 10s of the failed write")
	}
}
