package broker

import (
	"encoding/binary"

	"github.com/mochi-mqtt/server/v2/packets"
)

// maxHeldQoS0 bounds the QoS 0 messages an MQTT 5 client's connection holds
// behind a full Receive Maximum window; beyond it they are dropped and
// counted. QoS 1/2 messages are bounded by mochi's in-flight limit
// (max_inflight + max_queued) instead, and never dropped here.
const maxHeldQoS0 = maxPendingWrite

// outWindow keeps an MQTT 5 client's Receive Maximum (at most that many QoS
// 1/2 publishes unacknowledged) on the byte stream to the client, where
// packets are in their final order. mochi's own hold-back keeps held
// messages in a map, releases them in no particular order and lets new
// messages overtake them; edged turns it off (setWindows) and holds here:
// once the window is full, every later PUBLISH waits, in order, until the
// client's PUBACK, PUBCOMP or refusing PUBREC opens it. Other packets
// (acknowledgements of the client's own publishes, PINGRESP) pass.
//
// Its methods are called with the owning batchConn's lock held.
type outWindow struct {
	max      int // the client's Receive Maximum; 0: no window (MQTT 3, or none announced)
	unacked  map[uint16]struct{}
	held     [][]byte // whole PUBLISH packets, in order
	heldQoS0 int      // bytes of QoS 0 packets in held
	onDrop   func()   // called for a QoS 0 message dropped because held was full
}

// admit sorts whole packets, as mochi wrote them, into what may be sent now
// (appended to out) and what must wait.
func (w *outWindow) admit(out, p []byte) []byte {
	if w.max == 0 {
		return append(out, p...)
	}
	for len(p) > 0 {
		n := packetLen(p)
		if n <= 0 || n > len(p) {
			// Not whole packets: pass the rest as it is rather than guess.
			return append(out, p...)
		}
		pkt := p[:n]
		p = p[n:]
		if pkt[0]>>4 != packets.Publish {
			out = append(out, pkt...)
			continue
		}
		if len(w.held) == 0 && w.take(pkt) {
			out = append(out, pkt...)
			continue
		}
		if publishQoS(pkt) == 0 {
			if w.heldQoS0+len(pkt) > maxHeldQoS0 {
				if w.onDrop != nil {
					w.onDrop()
				}
				continue
			}
			w.heldQoS0 += len(pkt)
		}
		w.held = append(w.held, append([]byte(nil), pkt...))
	}
	return out
}

// take reports whether a PUBLISH may go now, counting it in the window.
func (w *outWindow) take(pkt []byte) bool {
	if publishQoS(pkt) == 0 {
		return true
	}
	id, ok := publishID(pkt)
	if !ok {
		return true
	}
	if _, resend := w.unacked[id]; resend {
		return true
	}
	if len(w.unacked) >= w.max {
		return false
	}
	if w.unacked == nil {
		w.unacked = map[uint16]struct{}{}
	}
	w.unacked[id] = struct{}{}
	return true
}

// ack opens the window for packet id and appends what may now be sent to out.
func (w *outWindow) ack(out []byte, id uint16) []byte {
	delete(w.unacked, id)
	for len(w.held) > 0 && w.take(w.held[0]) {
		pkt := w.held[0]
		w.held[0] = nil
		w.held = w.held[1:]
		if publishQoS(pkt) == 0 {
			w.heldQoS0 -= len(pkt)
		}
		out = append(out, pkt...)
	}
	if len(w.held) == 0 {
		w.held = nil
	}
	return out
}

// packetLen returns the length of the whole MQTT packet at the start of p,
// 0 if its fixed header is incomplete or invalid.
func packetLen(p []byte) int {
	remaining, mult := 0, 0
	for i := 1; i < len(p) && i <= 4; i++ {
		remaining |= int(p[i]&0x7f) << mult
		mult += 7
		if p[i]&0x80 == 0 {
			return i + 1 + remaining
		}
	}
	return 0
}

func publishQoS(pkt []byte) byte { return (pkt[0] >> 1) & 3 }

// publishID reads the packet id of a QoS 1/2 PUBLISH (one whole packet).
func publishID(pkt []byte) (uint16, bool) {
	body := pkt[headerLen(pkt):]
	if len(body) < 2 {
		return 0, false
	}
	at := 2 + int(binary.BigEndian.Uint16(body))
	if len(body) < at+2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(body[at:]), true
}

// headerLen returns the length of the fixed header at the start of p.
func headerLen(p []byte) int {
	for i := 1; i < len(p) && i <= 4; i++ {
		if p[i]&0x80 == 0 {
			return i + 1
		}
	}
	return len(p)
}
