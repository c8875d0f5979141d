package testpeer

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy in front of one address, which a test can
// cut (every connection closed, new ones refused at once), blackhole (every
// byte held, nothing closed: a link that went silent) and restore, to make
// a peer unreachable without stopping it.
type Proxy struct {
	Addr   string // where clients connect: 127.0.0.1:port
	target string

	ln    net.Listener
	mu    sync.Mutex
	gate  sync.Cond // cut or hole changed
	cut   bool
	hole  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards each connection to
// target. It is closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.gate.L = &p.mu
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects one client to the target once the link lets it through.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	p.conns[c] = struct{}{} // so that Cut closes it while it waits
	p.mu.Unlock()
	if !p.pass() {
		p.forget(c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.forget(c)
		return
	}
	p.mu.Lock()
	if p.cut { // cut while dialling
		p.mu.Unlock()
		p.forget(c, up)
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pipe(c, up)
	go p.pipe(up, c)
}

// pass waits while the link is blackholed and reports whether it may carry
// traffic (false once it is cut).
func (p *Proxy) pass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.hole && !p.cut {
		p.gate.Wait()
	}
	return !p.cut
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	// Either side ending or failing ends the pair. While blackholed, what
	// was read is held and nothing more is read, so the sender's buffers
	// fill as they would on a link that stopped answering.
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.forget(dst, src)
}

// forget closes connections and stops tracking them.
func (p *Proxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.gate.Broadcast()
	for c := range p.conns {
		c.Close()
	}
}

// Blackhole stops carrying traffic without closing anything: bytes on their
// way are held, new connections are accepted but not put through, until
// Restore lets everything continue (or Cut ends it).
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hole = true
}

// Restore lets connections through again, and traffic a blackhole held
// continues.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.hole = false
	p.gate.Broadcast()
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
