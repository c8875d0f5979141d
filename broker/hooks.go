package broker

import (
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
// from says who published it (telemetry.Origin).
type Interceptor func(m telemetry.Message, from telemetry.Origin) error

// edgeHook is edged's own mochi hook: it runs the interceptor, applies the
// per-client windows mochi sets only from the client's CONNECT, and counts
// and logs dropped messages.
type edgeHook struct {
	mqtt.HookBase
	intercept atomic.Pointer[Interceptor]
	refused   atomic.Int64
	drops     *dropLog
	info      *system.Info
	seq       sequencer
	flow      *flowControl

	// maxKeepalive and topicAliasMax are broker.max_keepalive (seconds) and
	// broker.topic_alias_maximum, told to MQTT 5 clients in the CONNACK.
	maxKeepalive  uint16
	topicAliasMax uint16

	// acl is the listeners' ACL check (AuthHook), which checkPublish runs
	// before mochi would for a 3.1.1 client.
	acl *AuthHook

	// subIDs holds the packet ids of SUBSCRIBE/UNSUBSCRIBE packets being
	// answered (see OnPacketRead).
	subIDsMu sync.Mutex
	subIDs   map[*mqtt.Client][2]uint16 // the id mochi sees, the client's id
}

func (h *edgeHook) ID() string { return "edged" }

var edgeHookEvents = newHookEvents(mqtt.OnConnect, mqtt.OnPublish, mqtt.OnPublishDropped, mqtt.OnDisconnect,
	mqtt.OnStarted, mqtt.OnPacketEncode, mqtt.OnPacketRead, mqtt.OnSubscribed, mqtt.OnUnsubscribed,
	mqtt.OnQosComplete, mqtt.OnSessionEstablish)

func (h *edgeHook) Provides(b byte) bool { return edgeHookEvents.has(b) }

// hookEvents is the set of mochi events a hook takes, for its Provides.
// mochi asks every hook about every event of every packet (some thirty
// questions per message for edged's three hooks), so the answer is a bit
// in a table rather than a search of a list built on each call.
type hookEvents [4]uint64

func newHookEvents(events ...byte) hookEvents {
	var s hookEvents
	for _, e := range events {
		s[e/64] |= 1 << (e % 64)
	}
	return s
}

func (s *hookEvents) has(e byte) bool { return s[e/64]&(1<<(e%64)) != 0 }

// OnSessionEstablish drops the expired messages of the session cl is about
// to take over. mochi clears expired messages once a second and resends a
// returning session's messages without looking at their expiry, so a
// client back between two clearings was sent messages that had expired
// (MQTT-3.3.2-5 forbids it). mochi would need the expiry check in
// ResendInflightMessages.
func (h *edgeHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	srv := h.flow.srv
	if old, ok := srv.Clients.Get(cl.ID); ok && old != cl {
		old.ClearExpiredInflights(time.Now().Unix(), srv.Options.Capabilities.MaximumMessageExpiryInterval)
	}
}

// OnQosComplete wakes the publishers held for cl (flowControl): mochi calls
// it once a QoS 1/2 message has left cl's in-flight set. The wake-up when
// the acknowledgement arrives (batchConn.observe) comes before that, while
// the message still counts as in flight, so a publisher that looked then
// found no room and, with nothing else moving, would wait out the hold.
func (h *edgeHook) OnQosComplete(cl *mqtt.Client, _ packets.Packet) {
	if bc, ok := cl.Net.Conn.(*batchConn); ok {
		bc.flow.moved()
	}
}

// OnStarted puts the sessions mochi restored from the store in order (see
// sequencer) before their clients come back.
func (h *edgeHook) OnStarted() { h.seq.restart() }

// OnConnect sets the client's windows (see setWindows) and caps an MQTT 5
// client's keep alive: one that asked for none or for more than
// max_keepalive is told to use max_keepalive (Server Keep Alive), which
// the broker then enforces. An MQTT 3 client cannot be told and keeps its
// own, as with Mosquitto.
func (h *edgeHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	setWindows(cl)
	if bc, ok := cl.Net.Conn.(*batchConn); ok {
		bc.flow.out = outboundQueue(cl)
	}
	h.flow.forget()
	if cl.Properties.ProtocolVersion >= 5 && h.maxKeepalive > 0 && (cl.State.Keepalive == 0 || cl.State.Keepalive > h.maxKeepalive) {
		cl.State.Keepalive = h.maxKeepalive
		cl.State.ServerKeepalive = true
	}
	return nil
}

// OnPacketRead checks a network PUBLISH (checkPublish), and keeps mochi
// from refusing a SUBSCRIBE or UNSUBSCRIBE whose
// packet id equals one the broker chose for a message it sent the client.
// The two directions have their own ids (MQTT 2.2.1), but mochi looks the
// id up in the map that holds both and answers 0x91 (packet identifier in
// use); mosquitto_sub then exits when it resubscribes to a session with
// messages waiting. Such a packet is handed to mochi with an id not in use,
// and the client's id is put back on its SUBACK or UNSUBACK.
func (h *edgeHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return pk, h.checkPublish(cl, &pk)
	case packets.Subscribe, packets.Unsubscribe:
	default:
		return pk, nil
	}
	cur, ok := cl.State.Inflight.Get(pk.PacketID)
	if !ok || cur.FixedHeader.Type == packets.Pubrec { // the client's own QoS 2 publish: truly in use
		return pk, nil
	}
	free := uint16(0xffff)
	for ; free > 0; free-- {
		if _, used := cl.State.Inflight.Get(free); !used {
			break
		}
	}
	if free == 0 {
		return pk, nil
	}
	h.subIDsMu.Lock()
	if h.subIDs == nil {
		h.subIDs = map[*mqtt.Client][2]uint16{}
	}
	h.subIDs[cl] = [2]uint16{free, pk.PacketID}
	h.subIDsMu.Unlock()
	pk.PacketID = free
	return pk, nil
}

// checkPublish answers, before mochi does, the network publishes mochi
// answers against MQTT's rules: an unknown topic alias, a denied 3.1.1
// publish, a publish to a $ topic. One hook that mochi already calls for
// every packet does it; a hook each would add to what mochi asks of its
// hooks on every packet.
func (h *edgeHook) checkPublish(cl *mqtt.Client, pk *packets.Packet) error {
	if cl.Net.Inline {
		return nil
	}
	if err := refuseUnknownAlias(h.flow.srv, h.topicAliasMax, cl, pk); err != nil {
		return err
	}
	if err := refuseDenied311(h.acl, cl, pk); err != nil {
		return err
	}
	return ackDollarTopic(cl, pk)
}

// OnPacketEncode puts back a SUBACK's or UNSUBACK's packet id (see
// OnPacketRead), sets the client's windows again as its CONNACK goes out
// (mochi resets them when the client takes over a stored session) and
// announces broker.topic_alias_maximum in it (mochi does not), and
// gives a successful PUBACK reason 0x00: mochi uses 0x01 (granted QoS 1),
// which is not a PUBACK reason code.
func (h *edgeHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Puback:
		if pk.ReasonCode == packets.CodeGrantedQos1.Code {
			pk.ReasonCode = packets.CodeSuccess.Code
		}
	case packets.Connack:
		setWindows(cl)
		if pk.ReasonCode < packets.ErrUnspecifiedError.Code {
			pk.Properties.TopicAliasMaximum = h.topicAliasMax
		}
	case packets.Suback, packets.Unsuback:
		h.subIDsMu.Lock()
		if ids, ok := h.subIDs[cl]; ok && ids[0] == pk.PacketID {
			pk.PacketID = ids[1]
			delete(h.subIDs, cl)
		}
		h.subIDsMu.Unlock()
	}
	return pk
}

// setWindows lifts an MQTT 3 client's inbound QoS 2 quota to the packet id
// space: mochi applies its announced Receive Maximum to every client, and an
// MQTT 3 client, which cannot learn it, would be disconnected for exceeding
// it. It also turns off mochi's own hold-back for an MQTT 5 client's Receive
// Maximum, which releases messages in no particular order and lets new ones
// overtake held ones; edged keeps that window on the connection instead, in
// publish order (see outWindow).
func setWindows(cl *mqtt.Client) {
	if cl.Properties.ProtocolVersion < 5 {
		cl.State.Inflight.ResetReceiveQuota(65535)
	}
	cl.State.Inflight.ResetSendQuota(0)
}

// OnPublish stamps every publish with its place in the publish order (see
// sequencer) and runs the interceptor for a network client's publish. The
// inline client's publishes are intercepted in Broker.Publish, where the
// error can be returned to the caller.
func (h *edgeHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	pk.Created = h.seq.stamp(time.Now())
	h.flow.sawPublish(&pk)
	if cl.Net.Inline {
		return pk, nil
	}
	fn := h.intercept.Load()
	if fn == nil {
		h.flow.admit(cl, pk.TopicName)
		return pk, nil
	}
	err := (*fn)(telemetry.Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain}, telemetry.Origin{Client: cl.ID})
	if err == nil {
		h.flow.admit(cl, pk.TopicName)
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

// OnSubscribed and OnUnsubscribed tell flow control that who receives a
// topic may have changed.
func (h *edgeHook) OnSubscribed(*mqtt.Client, packets.Packet, []byte) { h.flow.forget() }
func (h *edgeHook) OnUnsubscribed(*mqtt.Client, packets.Packet)       { h.flow.forget() }

func (h *edgeHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.flow.forget()
	h.drops.forget(cl.ID)
	h.subIDsMu.Lock()
	delete(h.subIDs, cl)
	h.subIDsMu.Unlock()
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
