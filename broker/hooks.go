package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"

	"github.com/edged/edged/telemetry"
)

// ErrQuotaExceeded is what an interceptor returns to refuse a message for
// lack of room (the store-and-forward buffer is full). An MQTT 5 publisher
// of QoS 1 or 2 gets reason code 0x97 (quota exceeded).
var ErrQuotaExceeded = errors.New("broker: quota exceeded")

// Interceptor sees every publish before it is acknowledged or delivered.
type Interceptor func(m telemetry.Message, fromClient string) error

// edgeHook is edged's own mochi hook: it runs the interceptor, applies the
// per-client windows mochi sets only from the client's CONNECT, and counts
// and logs dropped messages.
type edgeHook struct {
	mqtt.HookBase
	intercept atomic.Pointer[Interceptor]
	refused   atomic.Int64
	drops     *dropLog
	info      *system.Info

	// released holds QoS 1/2 messages mochi sent from a client's hold-back
	// queue (see OnPacketSent); nReleased counts them for a cheap fast path.
	releasedMu sync.Mutex
	released   map[*mqtt.Client][]packets.Packet
	nReleased  atomic.Int64
}

func (h *edgeHook) ID() string { return "edged" }

func (h *edgeHook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mqtt.OnConnect, mqtt.OnPublish, mqtt.OnPublishDropped, mqtt.OnDisconnect,
		mqtt.OnPacketSent, mqtt.OnPacketRead}, b) >= 0
}

// OnPacketSent notices mochi releasing a message it held back because the
// client's Receive Maximum window was full (mochi marks those Expiry -1).
// mochi deletes such a message from the in-flight map right after sending
// it, so its PUBACK would neither complete it nor reopen the window: the
// client would stall after Receive Maximum messages, and the message would
// not be resent after a reconnect. It is put back on the client's next read
// (before that packet, often its PUBACK, is processed) or at disconnect.
func (h *edgeHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 || pk.Expiry >= 0 {
		return
	}
	pk.Expiry = 0
	pk.FixedHeader.Dup = false
	h.releasedMu.Lock()
	if h.released == nil {
		h.released = map[*mqtt.Client][]packets.Packet{}
	}
	h.released[cl] = append(h.released[cl], pk)
	h.releasedMu.Unlock()
	h.nReleased.Add(1)
}

// OnPacketRead puts released messages back in flight (see OnPacketSent).
func (h *edgeHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.nReleased.Load() > 0 {
		h.restoreReleased(cl)
	}
	return pk, nil
}

func (h *edgeHook) restoreReleased(cl *mqtt.Client) {
	h.releasedMu.Lock()
	pks := h.released[cl]
	delete(h.released, cl)
	h.releasedMu.Unlock()
	if len(pks) == 0 {
		return
	}
	h.nReleased.Add(-int64(len(pks)))
	for _, p := range pks {
		if cl.State.Inflight.Set(p) && h.info != nil {
			atomic.AddInt64(&h.info.Inflight, 1)
		}
	}
}

// OnConnect lifts an MQTT 3 client's inbound QoS 2 quota to the packet id
// space: mochi applies its announced Receive Maximum to every client, and an
// MQTT 3 client, which cannot learn it, would be disconnected for exceeding
// it. An MQTT 5 client's own Receive Maximum is left as it is: narrowing it
// would make mochi hold messages back in an unordered map.
func (h *edgeHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if cl.Properties.ProtocolVersion < 5 {
		cl.State.Inflight.ResetReceiveQuota(65535)
	}
	return nil
}

// OnPublish runs the interceptor for a network client's publish. The inline
// client's publishes are intercepted in Broker.Publish, where the error can
// be returned to the caller.
func (h *edgeHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	fn := h.intercept.Load()
	if fn == nil || cl.Net.Inline {
		return pk, nil
	}
	err := (*fn)(telemetry.Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain}, cl.ID)
	if err == nil {
		return pk, nil
	}
	h.refused.Add(1)
	code := packets.ErrUnspecifiedError
	if errors.Is(err, ErrQuotaExceeded) {
		code = packets.ErrQuotaExceeded
	}
	switch {
	case cl.Properties.ProtocolVersion >= 5 && pk.FixedHeader.Qos > 0:
		ack := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Puback},
			PacketID:    pk.PacketID,
			ReasonCode:  code.Code,
			Properties:  packets.Properties{ReasonString: code.Reason},
		}
		if pk.FixedHeader.Qos == 2 {
			ack.FixedHeader.Type = packets.Pubrec
		}
		_ = cl.WritePacket(ack)
	case cl.Properties.ProtocolVersion < 5:
		// MQTT 3 has no negative acknowledgement: the publisher learns of the
		// refusal by losing its connection, and will resend after reconnecting.
		cl.Stop(code)
	}
	return pk, packets.ErrRejectPacket
}

// OnPublishDropped is mochi telling that a client's outbound queue was full.
func (h *edgeHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.drops.dropped(cl.ID, cl.Net.Listener, "outbound queue full")
}

func (h *edgeHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.restoreReleased(cl)
	h.drops.forget(cl.ID)
}

// dropLog logs, per client, that messages are being dropped: once when it
// starts, then at most once a minute with the number dropped since. Counting
// is mochi's (Info.MessagesDropped, Info.InflightDropped) and ours (expiry).
type dropLog struct {
	log   *slog.Logger
	mu    sync.Mutex
	state map[string]*dropState
}

type dropState struct {
	logged time.Time
	since  int
}

const dropLogEvery = time.Minute

func newDropLog(log *slog.Logger) *dropLog {
	return &dropLog{log: log, state: map[string]*dropState{}}
}

func (d *dropLog) dropped(client, listener, why string) {
	d.mu.Lock()
	st, ok := d.state[client]
	if !ok {
		if len(d.state) > 10000 { // bound memory if clients churn without disconnect events
			d.state = map[string]*dropState{}
		}
		st = &dropState{}
		d.state[client] = st
	}
	st.since++
	now := time.Now()
	if ok && now.Sub(st.logged) < dropLogEvery {
		d.mu.Unlock()
		return
	}
	n := st.since
	st.since, st.logged = 0, now
	d.mu.Unlock()
	if !ok {
		d.log.Warn("subscriber cannot keep up: dropping messages for it", "client", client, "listener", listener, "reason", why)
		return
	}
	d.log.Warn("subscriber still dropping messages", "client", client, "listener", listener, "reason", why, "dropped", n, "during", dropLogEvery)
}

func (d *dropLog) forget(client string) {
	d.mu.Lock()
	delete(d.state, client)
	d.mu.Unlock()
}
