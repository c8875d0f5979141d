package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/edged/edged/liveness"
)

// acceptStallLimit is how long a listener's accepts may keep failing
// before the watchdog hears that it is stuck: out of file descriptors for
// a minute is a leak a restart mends, not a burst that passes.
const acceptStallLimit = time.Minute

// netListener is a mochi listener over a socket this package opens itself,
// so that every accepted connection is wrapped in a guardConn before mochi
// reads from it, and so that the socket is bound (and a busy address
// reported) before Run says it is ready. mochi's own listeners bind the
// websocket port only inside Serve, and cannot wrap connections.
type netListener struct {
	id    string
	proto string // tcp | tls | ws
	addr  string
	tls   *tls.Config
	wrap  func(net.Conn) net.Conn
	// wrapListener, when set (by tests), wraps the bound socket.
	wrapListener func(net.Listener) net.Listener

	acceptErrors atomic.Int64
	loop         *liveness.Loop // busy while accepts keep failing

	// clients is mochi's wait group of client connections
	// (Listeners.ClientsWg), which mochi's Close waits on. mochi counts a
	// connection in it only once the goroutine serving it runs, which may
	// be after that wait began (a race, and a wait that misses it); the
	// listener counts each connection before handing it over instead, and
	// Close returns only once Serve has stopped counting. Nil: not counted.
	clients *sync.WaitGroup

	mu     sync.Mutex
	stop   chan struct{} // closed by Close
	ln     net.Listener
	http   *http.Server
	done   bool
	served chan struct{} // closed when Serve returns; nil before Serve
	log    *slog.Logger
}

var _ listeners.Listener = (*netListener)(nil)

func (l *netListener) ID() string       { return l.id }
func (l *netListener) Protocol() string { return l.proto }

// Address is the bound address once Init has run, the configured one before.
func (l *netListener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *netListener) addrNet() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Init binds the socket.
func (l *netListener) Init(log *slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	if l.wrapListener != nil {
		ln = l.wrapListener(ln)
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.mu.Lock()
	l.ln, l.log = ln, log
	l.mu.Unlock()
	return nil
}

// Serve accepts connections until Close. Each is handed to mochi wrapped.
func (l *netListener) Serve(establish listeners.EstablishFn) {
	if l.proto == "ws" {
		l.serveWS(establish)
		return
	}
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	served := make(chan struct{})
	l.served = served
	l.mu.Unlock()
	defer close(served)
	var failing int // accept errors in a row
	defer l.loop.Idle()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors (EMFILE), of memory, a connection
			// aborted before it was accepted: the socket is still good.
			// The watchdog learns of the failure before the count shows it,
			// so whoever sees the count sees the listener busy failing.
			failing++
			if failing == 1 {
				l.loop.Busy("failing accepts, retrying with backoff")
				l.log.Warn("accept failing; retrying with backoff", "listener", l.id, "error", err)
			}
			l.acceptErrors.Add(1)
			if !l.pause(acceptBackoff(failing)) {
				return
			}
			continue
		}
		if failing > 0 {
			l.log.Info("accepting again", "listener", l.id, "failed_accepts", failing)
			l.loop.Idle()
			failing = 0
		}
		l.counted(1)
		go func() {
			defer l.counted(-1)
			if err := establish(l.id, l.wrap(c)); err != nil && !errors.Is(err, io.EOF) {
				l.log.Debug("client connection ended", "remote", c.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

// acceptBackoff is the wait after the n-th accept error in a row: 5ms,
// doubling, at most a second.
func acceptBackoff(n int) time.Duration {
	return min(5*time.Millisecond<<min(n-1, 8), time.Second)
}

// pause waits d, or until Close; it reports whether the listener is open.
func (l *netListener) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !l.closed()
	case <-l.stopped():
		return false
	}
}

// stopped is closed by Close.
func (l *netListener) stopped() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop == nil {
		l.stop = make(chan struct{})
	}
	return l.stop
}

func (l *netListener) closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// Close stops accepting and asks mochi to close this listener's clients.
func (l *netListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	first := !l.done
	l.done = true
	ln, hs := l.ln, l.http
	if l.stop == nil {
		l.stop = make(chan struct{})
	}
	if first {
		close(l.stop)
	}
	l.mu.Unlock()
	if !first {
		return
	}
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = hs.Shutdown(ctx)
		cancel()
	}
	if ln != nil {
		_ = ln.Close()
	}
	l.mu.Lock()
	served := l.served
	l.mu.Unlock()
	if served != nil && l.proto != "ws" {
		<-served // no connection is counted after this
	}
	closeClients(l.id)
}

// counted adds delta to mochi's count of client connections, if known.
func (l *netListener) counted(delta int) {
	if l.clients != nil {
		l.clients.Add(delta)
	}
}

// serveWS serves MQTT over websocket (subprotocol "mqtt", binary frames).
func (l *netListener) serveWS(establish listeners.EstablishFn) {
	up := websocket.Upgrader{
		Subprotocols: []string{"mqtt"},
		// Browsers on other origins (dashboards) are the point of a ws listener;
		// authentication is the users file, not the Origin header.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	hs := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Counted before the upgrade: Close's Shutdown waits for a
			// request until it is upgraded, so the count comes first.
			l.counted(1)
			defer l.counted(-1)
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // Upgrade has answered the client already
			}
			c := &wsConn{Conn: ws.NetConn(), ws: ws}
			// Past the upgrade, mochi's keepalive deadlines govern the conn.
			_ = c.SetDeadline(time.Time{})
			if err := establish(l.id, l.wrap(c)); err != nil && !errors.Is(err, io.EOF) {
				l.log.Debug("client connection ended", "remote", r.RemoteAddr, "error", err)
			}
			_ = ws.Close()
		}),
		ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.http = hs
	l.mu.Unlock()
	if err := hs.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.closed() {
		l.log.Warn("websocket listener stopped", "error", err)
	}
}

// wsConn presents a websocket as the byte stream mochi reads: MQTT packets
// may span binary messages and a message may hold several packets.
type wsConn struct {
	net.Conn
	ws  *websocket.Conn
	cur io.Reader
	wmu sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("websocket: text message where MQTT needs binary")
			}
			c.cur = r
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.ws.Close() }
