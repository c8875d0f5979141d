package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metric is one family: its description and how it reads its value(s).
type metric struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
}

func counter(name, help string, labels ...string) metric {
	return metric{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue}
}

func gauge(name, help string, labels ...string) metric {
	return metric{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue}
}

// The families, by part. Names follow Prometheus conventions: a _total
// suffix on counters, base units (seconds, bytes), bus and device labels.
var (
	mBuildInfo = gauge("edged_build_info", "Always 1; the version label says which edged runs.", "version", "gateway")

	mBrokerClients       = gauge("edged_broker_clients", "Network MQTT clients connected to the embedded broker.")
	mBrokerReceived      = counter("edged_broker_messages_received_total", "PUBLISH packets the broker received, network and in-process.")
	mBrokerSent          = counter("edged_broker_messages_sent_total", "PUBLISH packets the broker wrote to clients.")
	mBrokerDropped       = counter("edged_broker_messages_dropped_total", "Messages the broker dropped, by reason: queue_full (a subscriber's queue was full) or expired (queued past message_expiry).", "reason")
	mBrokerRefused       = counter("edged_broker_publishes_refused_total", "Publishes refused because the uplink's buffer was full.")
	mBrokerLogins        = counter("edged_broker_logins_refused_total", "CONNECTs refused for a wrong user name or password, or anonymous where that is not allowed.")
	mBrokerACL           = counter("edged_broker_acl_denied_total", "Publishes and subscriptions the ACL refused.")
	mBrokerClosed        = counter("edged_broker_connections_closed_total", "Connections the broker closed for a bad packet, by reason: malformed or invalid_topic.", "reason")
	mBrokerAcceptErrors  = counter("edged_broker_accept_errors_total", "Failed accepts (such as too many open files), retried with backoff.")
	mBrokerRetained      = gauge("edged_broker_retained_messages", "Retained messages held by the broker.")
	mBrokerSubscriptions = gauge("edged_broker_subscriptions", "Subscriptions held by the broker.")
	mBrokerInflight      = gauge("edged_broker_inflight_messages", "QoS 1 and 2 messages held for subscribers.")

	mModbusOpens      = counter("edged_modbus_bus_opens_total", "Successful opens of the bus's serial port or TCP connection.", "bus")
	mModbusBusy       = counter("edged_modbus_bus_busy_seconds_total", "Time the bus spent in transactions; its rate is the bus's utilisation (1 = always busy).", "bus")
	mModbusLatency    = prometheus.NewDesc("edged_modbus_request_duration_seconds", "How long the bus's transactions took, answered or not.", []string{"bus"}, nil)
	mModbusOnline     = gauge("edged_modbus_device_online", "1 while the device answers, 0 while it is offline.", "bus", "device")
	mModbusCycles     = counter("edged_modbus_poll_cycles_total", "Poll cycles run.", "bus", "device")
	mModbusRequests   = counter("edged_modbus_requests_total", "Modbus transactions sent, reads and writes.", "bus", "device")
	mModbusTimeouts   = counter("edged_modbus_timeouts_total", "Transactions without an answer in time.", "bus", "device")
	mModbusExceptions = counter("edged_modbus_exceptions_total", "Exception responses.", "bus", "device")
	mModbusErrors     = counter("edged_modbus_errors_total", "Other failed transactions: CRC, framing, I/O, port gone.", "bus", "device")
	mModbusSent       = counter("edged_modbus_sent_bytes_total", "ADU bytes sent.", "bus", "device")
	mModbusReceived   = counter("edged_modbus_received_bytes_total", "ADU bytes received.", "bus", "device")
	mModbusOverruns   = counter("edged_modbus_overruns_total", "Poll cycles that started late because the previous one ran long.", "bus", "device")
	mModbusWrites     = counter("edged_modbus_writes_total", "Writes done.", "bus", "device")
	mModbusWriteErrs  = counter("edged_modbus_write_errors_total", "Writes refused or failed.", "bus", "device")

	mSerialOnline    = gauge("edged_serial_device_online", "1 while the port is open (and a polled sensor answers).", "device")
	mSerialOpens     = counter("edged_serial_opens_total", "Successful opens of the port.", "device")
	mSerialBytes     = counter("edged_serial_read_bytes_total", "Bytes read from the port.", "device")
	mSerialFrames    = counter("edged_serial_frames_total", "Complete frames read, by result: matched, unmatched or overlong (dropped).", "device", "result")
	mSerialNoise     = counter("edged_serial_noise_bytes_total", "Bytes outside start/end frames.", "device")
	mSerialPoints    = counter("edged_serial_points_total", "Points published.", "device")
	mSerialRequests  = counter("edged_serial_requests_total", "Poll requests written.", "device")
	mSerialPubErrors = counter("edged_serial_publish_errors_total", "Publishes the broker refused.", "device")

	mATOnline   = gauge("edged_at_device_online", "1 while the port is open and the module answers.", "device")
	mATOpens    = counter("edged_at_opens_total", "Successful opens of the port.", "device")
	mATCommands = counter("edged_at_commands_total", "AT commands sent.", "device")
	mATReplies  = counter("edged_at_replies_total", "Commands answered, by result: ok, error or timeout.", "device", "result")
	mATResets   = counter("edged_at_resets_total", "Module resets after consecutive timeouts.", "device")
	mATURCs     = counter("edged_at_urcs_total", "Unsolicited result codes recognised.", "device")
	mATStray    = counter("edged_at_stray_lines_total", "Lines that were neither a reply nor a URC.", "device")
	mATPoints   = counter("edged_at_points_total", "Points published.", "device")

	mUplinkConnected  = gauge("edged_uplink_connected", "1 while the uplink is connected to the upstream broker.")
	mUplinkConnects   = counter("edged_uplink_connects_total", "Connections to the upstream broker made.")
	mUplinkFailures   = counter("edged_uplink_connect_failures_total", "Connection attempts that failed.")
	mUplinkDelivered  = counter("edged_uplink_delivered_total", "Buffered messages the upstream acknowledged (PUBACK).")
	mUplinkLastPuback = gauge("edged_uplink_last_puback_timestamp_seconds", "Unix time of the last PUBACK from the upstream broker; absent before the first.")
	mUplinkPubackAge  = gauge("edged_uplink_seconds_since_last_puback", "Seconds since the last PUBACK from the upstream broker; absent before the first.")
	mUplinkQoS0       = counter("edged_uplink_qos0_messages_total", "QoS 0 messages sent without the buffer, by result: sent or dropped.", "result")
	mUplinkRefused    = counter("edged_uplink_refused_total", "Messages refused because the buffer was full.")
	mUplinkDuplicates = counter("edged_uplink_duplicates_possible_total", "Messages sent again after a connection ended before their PUBACK.")
	mUplinkDownlinked = counter("edged_uplink_downlink_messages_total", "Messages from upstream, by result: published locally or dropped.", "result")

	mBufferMessages = gauge("edged_buffer_messages", "Messages waiting in the store-and-forward buffer.")
	mBufferBytes    = gauge("edged_buffer_bytes", "Their size as counted against max_bytes.")
	mBufferMax      = gauge("edged_buffer_max_bytes", "The buffer's bound (buffer.max_bytes).")
	mBufferOldest   = gauge("edged_buffer_oldest_age_seconds", "Age of the oldest waiting message; 0 when empty.")
	mBufferAppended = counter("edged_buffer_appended_total", "Messages stored.")
	mBufferAcked    = counter("edged_buffer_acked_total", "Messages removed once delivered.")
	mBufferDropped  = counter("edged_buffer_dropped_total", "Messages the buffer dropped or refused, by reason: full (drop-oldest), expired (max_age) or rejected (reject, or the disk full).", "reason")
	mBufferCommits  = counter("edged_buffer_commits_total", "Transactions committed.")

	mHTTPRequests = counter("edged_http_requests_total", "Requests to this HTTP server.")
	mHTTPRefused  = counter("edged_http_logins_refused_total", "Requests refused for a missing or wrong login.")
	mHTTPBusy     = counter("edged_http_busy_total", "Requests answered 503 because too many were being served.")
	mHTTPErrors   = counter("edged_http_errors_total", "Errors met serving: broken requests, TLS handshakes, failed writes.")
	mUnhealthy    = gauge("edged_parts_stalled", "Parts whose loops make no progress (what /healthz reports).")
)

// partsCollector reads every part's Stats at scrape time: nothing is
// counted twice, and nothing costs anything between scrapes.
type partsCollector struct {
	src Sources
	srv *Server
}

// Describe sends nothing: the families depend on the configured devices,
// which makes this an unchecked collector.
func (c *partsCollector) Describe(chan<- *prometheus.Desc) {}

func (c *partsCollector) Collect(ch chan<- prometheus.Metric) {
	emit := func(m metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, v, labels...)
	}
	u := func(v uint64) float64 { return float64(v) }
	i := func(v int64) float64 { return float64(v) }
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	src := c.src
	emit(mBuildInfo, 1, src.Version, src.Gateway)

	if src.Broker != nil {
		s := src.Broker()
		emit(mBrokerClients, i(s.ClientsConnected))
		emit(mBrokerReceived, i(s.MessagesReceived))
		emit(mBrokerSent, i(s.MessagesSent))
		emit(mBrokerDropped, i(s.DroppedQueueFull), "queue_full")
		emit(mBrokerDropped, i(s.DroppedExpired), "expired")
		emit(mBrokerRefused, i(s.Refused))
		emit(mBrokerLogins, u(s.RefusedLogins))
		emit(mBrokerACL, u(s.RefusedACL))
		emit(mBrokerClosed, i(s.Malformed), "malformed")
		emit(mBrokerClosed, i(s.InvalidTopics), "invalid_topic")
		emit(mBrokerAcceptErrors, i(s.AcceptErrors))
		emit(mBrokerRetained, i(s.Retained))
		emit(mBrokerSubscriptions, i(s.Subscriptions))
		emit(mBrokerInflight, i(s.Inflight))
	}

	for _, f := range src.Modbus {
		s := f()
		emit(mModbusOpens, u(s.Opens), s.Bus)
		emit(mModbusBusy, s.Latency.Sum.Seconds(), s.Bus)
		buckets := make(map[float64]uint64, len(s.Latency.Buckets))
		for k, bound := range s.Latency.Bounds() {
			buckets[bound.Seconds()] = s.Latency.Buckets[k]
		}
		ch <- prometheus.MustNewConstHistogram(mModbusLatency, s.Latency.Count, s.Latency.Sum.Seconds(), buckets, s.Bus)
		for _, d := range s.Devices {
			l := []string{s.Bus, d.Device}
			emit(mModbusOnline, b(d.Online), l...)
			emit(mModbusCycles, u(d.Cycles), l...)
			emit(mModbusRequests, u(d.Requests), l...)
			emit(mModbusTimeouts, u(d.Timeouts), l...)
			emit(mModbusExceptions, u(d.Exceptions), l...)
			emit(mModbusErrors, u(d.Errors), l...)
			emit(mModbusSent, u(d.BytesOut), l...)
			emit(mModbusReceived, u(d.BytesIn), l...)
			emit(mModbusOverruns, u(d.Overruns), l...)
			emit(mModbusWrites, u(d.Writes), l...)
			emit(mModbusWriteErrs, u(d.WriteErrors), l...)
		}
	}

	for _, n := range src.Serial {
		s := n.Stats()
		emit(mSerialOnline, b(s.Online), n.Name)
		emit(mSerialOpens, u(s.Opens), n.Name)
		emit(mSerialBytes, u(s.Bytes), n.Name)
		emit(mSerialFrames, u(s.Matched), n.Name, "matched")
		emit(mSerialFrames, u(s.Unmatched), n.Name, "unmatched")
		emit(mSerialFrames, u(s.Overlong), n.Name, "overlong")
		emit(mSerialNoise, u(s.Noise), n.Name)
		emit(mSerialPoints, u(s.Points), n.Name)
		emit(mSerialRequests, u(s.Requests), n.Name)
		emit(mSerialPubErrors, u(s.PubErrors), n.Name)
	}

	for _, n := range src.AT {
		s := n.Stats()
		emit(mATOnline, b(s.Online), n.Name)
		emit(mATOpens, u(s.Opens), n.Name)
		emit(mATCommands, u(s.Commands), n.Name)
		emit(mATReplies, u(s.Replies), n.Name, "ok")
		emit(mATReplies, u(s.Errors), n.Name, "error")
		emit(mATReplies, u(s.Timeouts), n.Name, "timeout")
		emit(mATResets, u(s.Resets), n.Name)
		emit(mATURCs, u(s.URCs), n.Name)
		emit(mATStray, u(s.Stray), n.Name)
		emit(mATPoints, u(s.Points), n.Name)
	}

	if src.Uplink != nil {
		s := src.Uplink()
		emit(mUplinkConnected, b(s.Connected))
		emit(mUplinkConnects, u(s.Connects))
		emit(mUplinkFailures, u(s.ConnectFailures))
		emit(mUplinkDelivered, u(s.Delivered))
		if !s.LastDelivery.IsZero() {
			emit(mUplinkLastPuback, float64(s.LastDelivery.UnixNano())/1e9)
			emit(mUplinkPubackAge, time.Since(s.LastDelivery).Seconds())
		}
		emit(mUplinkQoS0, u(s.SentQoS0), "sent")
		emit(mUplinkQoS0, u(s.DroppedQoS0), "dropped")
		emit(mUplinkRefused, u(s.Refused))
		emit(mUplinkDuplicates, u(s.DuplicatesPossible))
		emit(mUplinkDownlinked, u(s.Downlinked), "published")
		emit(mUplinkDownlinked, u(s.DownlinkDropped), "dropped")

		bs := s.Buffer
		emit(mBufferMessages, i(bs.Messages))
		emit(mBufferBytes, i(bs.Bytes))
		emit(mBufferMax, i(src.BufferMaxBytes))
		emit(mBufferOldest, oldestAge(bs.Messages, bs.Oldest, time.Now()))
		emit(mBufferAppended, u(bs.Appended))
		emit(mBufferAcked, u(bs.Acked))
		emit(mBufferDropped, u(bs.DroppedFull), "full")
		emit(mBufferDropped, u(bs.Expired), "expired")
		emit(mBufferDropped, u(bs.Rejected), "rejected")
		emit(mBufferCommits, u(bs.Commits))
	}

	if src.Liveness != nil {
		emit(mUnhealthy, float64(len(src.Liveness())))
	}
	srv := c.srv
	emit(mHTTPRequests, u(srv.requests.Load()))
	emit(mHTTPRefused, u(srv.refusedLogins.Load()))
	emit(mHTTPBusy, u(srv.busy.Load()))
	emit(mHTTPErrors, u(srv.errs.Load()))
}

// oldestAge is the age in seconds of the oldest buffered message, 0 when
// the buffer is empty.
func oldestAge(messages int64, oldest, now time.Time) float64 {
	if messages == 0 || oldest.IsZero() {
		return 0
	}
	return max(0, now.Sub(oldest).Seconds())
}
