package broker

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawSocket reads and writes a TCP connection's non-blocking socket without
// telling the Go scheduler that a system call is under way. A read or write
// of a non-blocking socket cannot block (it returns EAGAIN, and the runtime's
// poller waits as it does for net.Conn), so the hand-over that the ordinary
// path prepares for a blocking call is pure cost: each one woke the
// runtime's monitor thread (sysmon) when the broker had been idle, which at
// a gateway's pace (a message every few hundred microseconds) is every
// message. Deadlines and closing behave as for net.Conn: the waiting is the
// poller's.
type rawSocket struct {
	rc    syscall.RawConn
	addr  net.Addr
	read  rawOp
	write rawOp
}

// rawOp is one direction's system call, with the function the poller calls
// built once: a closure made per call would capture the buffer and results
// and cost an allocation on every read and every write. mu keeps the
// direction's calls one at a time, as net.Conn allows them concurrently.
type rawOp struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool
}

// newRawSocket returns c's raw socket, or nil when c is not a plain TCP
// connection (TLS, websocket), whose reads and writes keep their own path.
func newRawSocket(c net.Conn) *rawSocket {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSocket{rc: rc, addr: tc.RemoteAddr()}
	s.read.call = s.read.readOnce
	s.write.call = s.write.writeAll
	return s
}

func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := s.read.run(p, s.rc.Read)
	switch {
	case err != nil:
		return 0, err // the poller's: closed, or the deadline passed
	case errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// run has the poller call op's function on p (wait is the RawConn's Read or
// Write) and returns what it did.
func (op *rawOp) run(p []byte, wait func(func(fd uintptr) bool) error) (int, syscall.Errno, error) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.p, op.n, op.errno = p, 0, 0
	err := wait(op.call)
	op.p = nil
	return op.n, op.errno, err
}

// readOnce reads what the socket holds into op.p; false asks the poller to
// wait for more.
func (op *rawOp) readOnce(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&op.p[0])), uintptr(len(op.p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the poller waits until there is more
		}
		op.n, op.errno = int(r), e
		return true
	}
}

func (s *rawSocket) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := s.write.run(p, s.rc.Write)
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// writeAll writes op.p from op.n on; false asks the poller to wait until
// the socket takes more.
func (op *rawOp) writeAll(fd uintptr) bool {
	for op.n < len(op.p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&op.p[op.n])), uintptr(len(op.p)-op.n))
		switch e {
		case 0:
			op.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			op.errno = e
			return true
		}
	}
	return true
}

// opError wraps a failed system call as net.Conn's methods do.
func (s *rawSocket) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: s.addr, Err: err}
}
