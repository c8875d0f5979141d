package broker

import (
	"io"
	"net"
	"os"
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
	rc   syscall.RawConn
	addr net.Addr
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
	return &rawSocket{rc: rc, addr: tc.RemoteAddr()}
}

func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // the poller waits until there is more
			}
			n, errno = int(r), e
			return true
		}
	})
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

func (s *rawSocket) Write(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the socket takes more
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// opError wraps a failed system call as net.Conn's methods do.
func (s *rawSocket) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: s.addr, Err: err}
}
