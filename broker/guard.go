package broker

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mochi-mqtt/server/v2/packets"
)

// errMalformed is what a guarded connection's Read returns once the client
// has sent a packet that mochi could not decode safely. mochi then ends the
// client's session as it would after any read error.
var errMalformed = errors.New("malformed MQTT packet")

// errTooLarge is errMalformed for a packet beyond max_packet_size.
var errTooLarge = fmt.Errorf("%w: too large", errMalformed)

const (
	// guardBufMin is the read buffer a guarded connection starts with: room
	// for a few small packets, for a client that sends now and then (most
	// of a gateway's clients), which then holds 1 KiB instead of 8.
	guardBufMin = 1 << 10
	// guardBufSize is what the read buffer grows to, doubling, while reads
	// keep filling it: it holds many small packets, so that a client
	// publishing fast costs one syscall for several.
	guardBufSize = 8 << 10
	// guardKeepMax is the largest buffer kept between packets: a client that
	// once sent a big packet does not pin that much memory for its lifetime.
	guardKeepMax = 64 << 10
	// preConnectMax is the largest packet accepted before a CONNECT has been
	// accepted, and so the largest CONNECT: client id, credentials (a JWT
	// password fits), will message and properties. A client that has not
	// logged in may not make the broker hold more (issue 13.10).
	preConnectMax = 64 << 10
)

// frameDecoder checks MQTT packets one at a time the way mochi will read
// them, without trusting them: it frames each packet by its fixed header,
// refuses one whose announced size exceeds the limit before allocating for
// it, and runs mochi's own decoder on it inside recover, so a packet that
// would panic mochi's reader (upstream #501) panics here, harmlessly.
type frameDecoder struct {
	maxPacket int    // whole packet, header included
	version   byte   // protocol version, from the CONNECT; mochi's default before it
	connected bool   // a CONNECT has been seen
	clientID  string // from the CONNECT, for logs
	// observe, when set, is shown every packet that passed the check.
	observe func(seen seenPacket)
}

// seenPacket is what observers learn of a checked packet (a small value, so
// that checking allocates nothing per packet).
type seenPacket struct {
	typ        byte
	version    byte   // CONNECT
	receiveMax uint16 // CONNECT, MQTT 5 Receive Maximum
	id         uint16
	reason     byte
}

func newFrameDecoder(maxPacket int) frameDecoder {
	return frameDecoder{maxPacket: maxPacket, version: 4}
}

// frame reads the fixed header at the start of buf. It returns the size of
// the packet there, header included, and the size of its header; both are 0
// when even the header is incomplete. The packet is complete once buf holds
// total bytes. An error means the stream is not MQTT the broker will accept.
func (d *frameDecoder) frame(buf []byte) (total, hdr int, err error) {
	if len(buf) < 2 {
		return 0, 0, nil
	}
	var remaining, mult int
	i := 1
	for ; ; i++ {
		if i > 4 {
			return 0, 0, fmt.Errorf("%w: remaining length longer than 4 bytes", errMalformed)
		}
		if i >= len(buf) {
			return 0, 0, nil
		}
		b := buf[i]
		remaining |= int(b&0x7f) << mult
		mult += 7
		if b&0x80 == 0 {
			break
		}
	}
	hdr = i + 1
	total = hdr + remaining
	if !d.connected && total > min(d.maxPacket, preConnectMax) {
		return 0, 0, fmt.Errorf("%w: packet of %d bytes before CONNECT exceeds %d", errTooLarge, total, min(d.maxPacket, preConnectMax))
	}
	if total > d.maxPacket {
		return 0, 0, fmt.Errorf("%w: packet of %d bytes exceeds max_packet_size %d", errTooLarge, total, d.maxPacket)
	}
	return total, hdr, nil
}

// check decodes one complete packet (as framed by frame) with mochi's decoder
// and reports whether mochi may be given it.
func (d *frameDecoder) check(pkt []byte, headerLen int) (err error) {
	var pk packets.Packet
	if err := pk.FixedHeader.Decode(pkt[0]); err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	pk.FixedHeader.Remaining = len(pkt) - headerLen
	pk.ProtocolVersion = d.version
	if !d.connected && pk.FixedHeader.Type != packets.Connect {
		return fmt.Errorf("%w: first packet is type %d, not CONNECT", errMalformed, pk.FixedHeader.Type)
	}
	body := pkt[headerLen:]
	if pk.FixedHeader.Type == packets.Publish {
		if err := checkTopicName(publishTopic(body)); err != nil {
			return err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: decoder panicked on packet type %d: %v", errMalformed, pk.FixedHeader.Type, r)
		}
	}()
	if err := decodeBody(&pk, body); err != nil {
		return fmt.Errorf("%w: packet type %d: %v", errMalformed, pk.FixedHeader.Type, err)
	}
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.WillFlag {
		// A will is published later; Mosquitto refuses the CONNECT.
		if err := checkTopicName([]byte(pk.Connect.WillTopic)); err != nil {
			d.clientID = strings.Clone(pk.Connect.ClientIdentifier) // mochi decodes strings without copying the buffer
			return fmt.Errorf("will topic: %w", err)
		}
	}
	if pk.FixedHeader.Type == packets.Connect && !d.connected {
		d.connected = true
		d.version = pk.ProtocolVersion
		d.clientID = strings.Clone(pk.Connect.ClientIdentifier) // mochi decodes strings without copying the buffer
	}
	if d.observe != nil {
		d.observe(seenPacket{typ: pk.FixedHeader.Type, version: pk.ProtocolVersion,
			receiveMax: pk.Properties.ReceiveMaximum, id: pk.PacketID, reason: pk.ReasonCode})
	}
	return nil
}

// decodeBody decodes body into pk with mochi's decoder for the type in pk's
// fixed header.
func decodeBody(pk *packets.Packet, body []byte) error {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk.ConnectDecode(body)
	case packets.Disconnect:
		return pk.DisconnectDecode(body)
	case packets.Connack:
		return pk.ConnackDecode(body)
	case packets.Publish:
		return pk.PublishDecode(body)
	case packets.Puback:
		return pk.PubackDecode(body)
	case packets.Pubrec:
		return pk.PubrecDecode(body)
	case packets.Pubrel:
		return pk.PubrelDecode(body)
	case packets.Pubcomp:
		return pk.PubcompDecode(body)
	case packets.Subscribe:
		return pk.SubscribeDecode(body)
	case packets.Suback:
		return pk.SubackDecode(body)
	case packets.Unsubscribe:
		return pk.UnsubscribeDecode(body)
	case packets.Unsuback:
		return pk.UnsubackDecode(body)
	case packets.Pingreq, packets.Pingresp:
		return nil
	case packets.Auth:
		return pk.AuthDecode(body)
	default:
		return fmt.Errorf("invalid packet type %d", pk.FixedHeader.Type)
	}
}

// guardConn is a client connection whose Read hands mochi only bytes of
// packets that frameDecoder has checked. Bytes pass through one buffer,
// unchanged; nothing mochi receives was rewritten.
type guardConn struct {
	net.Conn
	sock     *rawSocket // the connection's socket, read and written directly; nil: through Conn
	dec      frameDecoder
	buf      []byte
	r, v, w  int  // buf[r:v] checked and not yet read by mochi, buf[v:w] unchecked
	filled   bool // the last read filled all the room it had: more is coming than buf holds
	err      error
	onReject func(c net.Conn, err error)
	// onRelease, when set, is told the size of the buffer the guard lets go
	// of when the stream ends.
	onRelease func(n int)
}

func newGuardConn(c net.Conn, maxPacket int, onReject func(net.Conn, error)) *guardConn {
	return &guardConn{Conn: c, sock: newRawSocket(c), dec: newFrameDecoder(maxPacket), onReject: onReject}
}

// Write sends p to the client (for batchConn, which writes to the guard).
func (g *guardConn) Write(p []byte) (int, error) {
	if g.sock != nil {
		return g.sock.Write(p)
	}
	return g.Conn.Write(p)
}

// read reads from the client's connection into p.
func (g *guardConn) read(p []byte) (int, error) {
	if g.sock != nil {
		return g.sock.Read(p)
	}
	return g.Conn.Read(p)
}

// Read returns checked bytes, reading and checking more from the client when
// none are left. A malformed packet ends the stream with an error wrapping
// errMalformed; nothing of that packet reaches mochi.
func (g *guardConn) Read(p []byte) (int, error) {
	for g.r == g.v {
		if g.err != nil {
			// The stream has ended and mochi has read all it may: the
			// buffer is let go of.
			if g.buf != nil && g.onRelease != nil {
				g.onRelease(cap(g.buf))
			}
			g.buf = nil
			return 0, g.err
		}
		if err := g.fill(); err != nil {
			g.err = err
			if errors.Is(err, errMalformed) && g.onReject != nil {
				g.onReject(g.Conn, err)
			}
		}
	}
	n := copy(p, g.buf[g.r:g.v])
	g.r += n
	return n, nil
}

// fill checks the complete packets already buffered, and when there are none
// reads more from the connection. It returns once some bytes are checked or
// on error.
func (g *guardConn) fill() error {
	if g.buf == nil {
		g.buf = make([]byte, guardBufMin)
	}
	for {
		for g.v < g.w {
			total, hdr, err := g.dec.frame(g.buf[g.v:g.w])
			if err != nil {
				return err
			}
			if total == 0 || total > g.w-g.v {
				// The rest of the packet has not come yet. Room is made as
				// its bytes arrive, doubling, never for the size a client
				// merely announced.
				if total > len(g.buf)-g.v && g.w == len(g.buf) {
					g.makeRoom(min(total, 2*len(g.buf)))
				}
				break
			}
			if err := g.dec.check(g.buf[g.v:g.v+total], hdr); err != nil {
				return err
			}
			g.v += total
		}
		if g.r < g.v {
			return nil
		}
		// Everything buffered has been read by mochi: start over at the front.
		if g.r == g.w {
			g.r, g.v, g.w = 0, 0, 0
			if len(g.buf) > guardKeepMax {
				g.buf = make([]byte, guardBufSize)
			}
		}
		if g.filled && len(g.buf) < guardBufSize {
			g.makeRoom(2 * len(g.buf))
		} else if len(g.buf)-g.w < 512 {
			g.makeRoom(0)
		}
		n, err := g.read(g.buf[g.w:])
		g.filled = n == len(g.buf)-g.w
		g.w += n
		if n > 0 {
			continue
		}
		if err != nil {
			return err
		}
	}
}

// makeRoom moves the unread bytes to the front of the buffer and grows it to
// hold need bytes. need is at most the size of the packet being read, which
// frame checked against the limits, and twice what has arrived of it.
func (g *guardConn) makeRoom(need int) {
	unread := g.w - g.r
	if need < unread {
		need = unread
	}
	if need > len(g.buf) {
		nb := make([]byte, need)
		copy(nb, g.buf[g.r:g.w])
		g.buf = nb
	} else {
		copy(g.buf, g.buf[g.r:g.w])
	}
	g.v -= g.r
	g.w -= g.r
	g.r = 0
}
