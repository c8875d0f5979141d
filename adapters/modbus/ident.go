package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.bug.st/serial"

	"github.com/edged/edged/adapters/internal/serialport"
	"github.com/edged/edged/config"
)

// Identification is what a device says of itself when asked for its basic
// device identification (function 43, MEI type 14, read code 1).
type Identification struct {
	Vendor   string // object 0, VendorName
	Product  string // object 1, ProductCode
	Revision string // object 2, MajorMinorRevision
}

func (id Identification) String() string {
	var parts []string
	for _, s := range []string{id.Vendor, id.Product, id.Revision} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// fcIdent is Read Device Identification: function 43, MEI type 14.
const (
	fcIdent  = 0x2B
	meiIdent = 0x0E
)

// Identify asks unit for its basic device identification. Many devices do
// not implement it and answer exception 1 (returned as an ExceptionError);
// the client library has no function 43, so Identify frames the one
// request itself, on a connection or port of its own for that request.
func (c *Client) Identify(unit uint8) (Identification, error) {
	pdu := []byte{fcIdent, meiIdent, 0x01, 0x00} // basic objects, from object 0
	var resp []byte
	var err error
	switch c.b.transport {
	case "tcp":
		resp, err = c.identTCP(unit, pdu)
	case "rtu-over-tcp":
		resp, err = c.identOverTCP(unit, pdu)
	default:
		resp, err = c.identSerial(unit, pdu)
	}
	if err != nil {
		return Identification{}, fmt.Errorf("unit %d: read device identification: %w", unit, err)
	}
	id, err := parseIdent(resp)
	if err != nil {
		return Identification{}, fmt.Errorf("unit %d: read device identification: %w", unit, err)
	}
	return id, nil
}

// identTCP sends pdu in an MBAP frame and returns the answer's PDU.
func (c *Client) identTCP(unit uint8, pdu []byte) ([]byte, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	frame := binary.BigEndian.AppendUint16(nil, 1) // transaction id
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(1+len(pdu)))
	frame = append(append(frame, unit), pdu...)
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	head := make([]byte, 7)
	if _, err := io.ReadFull(conn, head); err != nil {
		return nil, readErr(err)
	}
	n := int(binary.BigEndian.Uint16(head[4:]))
	if n < 2 || n > 254 || head[6] != unit {
		return nil, fmt.Errorf("bad response: MBAP length %d, unit %d", n, head[6])
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, readErr(err)
	}
	return body, nil
}

// identOverTCP sends pdu as an RTU frame to a serial device server.
func (c *Client) identOverTCP(unit uint8, pdu []byte) ([]byte, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return rtuExchange(conn, unit, pdu)
}

// dial opens a connection of its own to the bus's TCP target, for one
// request that must be answered within the timeout.
func (c *Client) dial() (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", c.b.target, c.d.timeout)
	if err != nil {
		return nil, fmt.Errorf("%s %w: %v", c.b.target, ErrNotOpen, err)
	}
	_ = conn.SetDeadline(time.Now().Add(c.d.timeout))
	return conn, nil
}

// identSerial sends pdu as an RTU frame on the bus's serial port, which the
// client library gives up for the request and reopens on the next one.
func (c *Client) identSerial(unit uint8, pdu []byte) ([]byte, error) {
	c.l.closeAll()
	cfg := c.b.cfg
	mode := serialport.PortMode(config.SerialPort{Port: cfg.Port, Baud: cfg.Baud, Parity: cfg.Parity,
		DataBits: cfg.DataBits, StopBits: cfg.StopBits})
	p, err := serial.Open(cfg.Port, mode)
	if err != nil {
		return nil, fmt.Errorf("%s %w: %v", cfg.Port, ErrNotOpen, err)
	}
	defer p.Close()
	return rtuExchange(&serialReader{p: p, deadline: time.Now().Add(c.d.timeout)}, unit, pdu)
}

// serialReader reads a serial port until a deadline; io.ReadFull on it
// fails with ErrTimeout when the deadline passes.
type serialReader struct {
	p        serial.Port
	deadline time.Time
}

func (r *serialReader) Read(b []byte) (int, error) {
	left := time.Until(r.deadline)
	if left <= 0 {
		return 0, ErrTimeout
	}
	if err := r.p.SetReadTimeout(left); err != nil {
		return 0, err
	}
	n, err := r.p.Read(b)
	if n == 0 && err == nil {
		return 0, ErrTimeout
	}
	return n, err
}

func (r *serialReader) Write(b []byte) (int, error) { return r.p.Write(b) }

// rtuExchange writes pdu as an RTU frame for unit and reads the answer to
// a function 43/14 request: unit, function, then the exception code or the
// identification header and objects, then the CRC.
func rtuExchange(rw io.ReadWriter, unit uint8, pdu []byte) ([]byte, error) {
	frame := append([]byte{unit}, pdu...)
	frame = binary.LittleEndian.AppendUint16(frame, crc16(frame))
	if _, err := rw.Write(frame); err != nil {
		return nil, err
	}
	got := make([]byte, 0, 256)
	next := func(n int) ([]byte, error) {
		if len(got)+n > 256 {
			return nil, errors.New("bad response: longer than an RTU frame")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(rw, b); err != nil {
			return nil, readErr(err)
		}
		got = append(got, b...)
		return b, nil
	}
	head, err := next(2)
	if err != nil {
		return nil, err
	}
	switch {
	case head[0] != unit:
		return nil, fmt.Errorf("bad response: from unit %d", head[0])
	case head[1] == fcIdent|0x80:
		if _, err := next(1); err != nil {
			return nil, err
		}
	case head[1] == fcIdent:
		h, err := next(6) // MEI, read code, conformity, more follows, next object, count
		if err != nil {
			return nil, err
		}
		for range int(h[5]) {
			obj, err := next(2)
			if err != nil {
				return nil, err
			}
			if _, err := next(int(obj[1])); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("bad response: function %d", head[1])
	}
	sum, err := next(2)
	if err != nil {
		return nil, err
	}
	body := got[:len(got)-2]
	if binary.LittleEndian.Uint16(sum) != crc16(body) {
		return nil, errors.New("bad response: CRC")
	}
	return body[1:], nil
}

// readErr names a read that ran out of time as ErrTimeout.
func readErr(err error) error {
	var ne net.Error
	if errors.Is(err, ErrTimeout) || (errors.As(err, &ne) && ne.Timeout()) {
		return ErrTimeout
	}
	return err
}

// parseIdent reads the PDU of an answer to function 43/14: the exception,
// or the objects of the basic identification.
func parseIdent(pdu []byte) (Identification, error) {
	var id Identification
	if len(pdu) >= 2 && pdu[0] == fcIdent|0x80 {
		return id, ExceptionError{pdu[1]}
	}
	if len(pdu) < 7 || pdu[0] != fcIdent || pdu[1] != meiIdent {
		return id, fmt.Errorf("bad response: % x", pdu)
	}
	rest, count := pdu[7:], int(pdu[6])
	for range count {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return id, errors.New("bad response: object runs past the answer")
		}
		val := strings.ToValidUTF8(string(rest[2:2+int(rest[1])]), "\uFFFD")
		switch rest[0] {
		case 0:
			id.Vendor = val
		case 1:
			id.Product = val
		case 2:
			id.Revision = val
		}
		rest = rest[2+int(rest[1]):]
	}
	return id, nil
}

// crc16 is the Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF).
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
