package linesim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edged/edged/config"
)

// Pattern is the regular expression the demo device reads the lines with.
const Pattern = `T=(?P<temperature>-?[0-9.]+),H=(?P<humidity>[0-9.]+)`

// period is how often a line is written.
const period = time.Second

// Start creates a pty pair, starts writing sensor lines to its master side
// and returns the path of the slave side (/dev/pts/N), which the adapter
// opens as its serial port. The sensor stops and the pty is removed when ctx
// ends.
func Start(ctx context.Context) (portPath string, err error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return "", fmt.Errorf("linesim: open /dev/ptmx: %w", err)
	}
	slave, path, err := openSlave(master)
	if err != nil {
		master.Close()
		return "", fmt.Errorf("linesim: %w", err)
	}
	drained := make(chan struct{})
	go func() {
		// Whatever the adapter writes (tx) is read and dropped, so its
		// writes never block on a full pty buffer.
		defer close(drained)
		buf := make([]byte, 256)
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		defer func() {
			master.Close()
			<-drained
			unix.Close(slave)
		}()
		begin := time.Now()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			line := Line(time.Since(begin))
			// Drop a line rather than block when nobody reads the port.
			_ = master.SetWriteDeadline(time.Now().Add(period))
			if _, err := master.Write(line); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return path, nil
}

// openSlave unlocks the pty behind master, sets it to raw mode so nothing
// is echoed or translated before the adapter opens it, and keeps one
// descriptor of it open so its settings last.
func openSlave(master *os.File) (fd int, path string, err error) {
	rc, err := master.SyscallConn()
	if err != nil {
		return -1, "", err
	}
	var n uint32
	var ioErr error
	if err := rc.Control(func(mfd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(mfd), unix.TIOCSPTLCK, 0); ioErr != nil {
			ioErr = fmt.Errorf("unlockpt: %w", ioErr)
			return
		}
		if n, ioErr = unix.IoctlGetUint32(int(mfd), unix.TIOCGPTN); ioErr != nil {
			ioErr = fmt.Errorf("ptsname: %w", ioErr)
		}
	}); err != nil {
		return -1, "", err
	}
	if ioErr != nil {
		return -1, "", ioErr
	}
	path = "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open %s: %w", path, err)
	}
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag &^= unix.CSIZE | unix.PARENB
		tio.Cflag |= unix.CS8
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
		err = unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	}
	if err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("raw mode on %s: %w", path, err)
	}
	return fd, path, nil
}

// Line is the sensor's output after running for d: temperature and humidity
// drifting slowly around 21.5 °C and 40 %.
func Line(d time.Duration) []byte {
	s := d.Seconds()
	temp := 21.5 + 1.5*math.Sin(2*math.Pi*s/600)
	hum := 40 + 5*math.Sin(2*math.Pi*s/900+1)
	return fmt.Appendf(nil, "T=%.1f,H=%.1f\r\n", temp, hum)
}

// DemoDevice is the [[serial]] device `edged demo` reads the simulated
// sensor with.
func DemoDevice(port string) config.Serial {
	return config.Serial{
		Name:       "weather",
		SerialPort: config.SerialPort{Port: port, Baud: 9600},
		Patterns:   []string{Pattern},
	}
}
