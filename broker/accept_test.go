package broker

import (
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

// failingListener fails its first fails Accepts with EMFILE (a process out
// of file descriptors), as the kernel reports it, then accepts normally.
type failingListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: fmt.Errorf("accept4: %w", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestListenerKeepsAcceptingAfterAcceptErrors(t *testing.T) {
	const fails = 10 // about 3s of backoff
	cfg := loopbackCfg()
	b, err := New(cfg, t.TempDir(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	b.lns[0].wrapListener = func(ln net.Listener) net.Listener { return &failingListener{Listener: ln, fails: fails} }
	t.Cleanup(runBroker(t, b))
	h, p := hostPort(t, b.Addrs()[0].String())

	// The first connection waits in the backlog while Accept fails.
	sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-t", "after")
	if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-t", "after", "-m", "accepted"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	if got := sub.Next(t, 5*time.Second); got != "after accepted" {
		t.Fatalf("got %q", got)
	}
	if got := b.Stats().AcceptErrors; got != fails {
		t.Fatalf("AcceptErrors = %d, want %d", got, fails)
	}
}
