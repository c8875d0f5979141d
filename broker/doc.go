// Package broker is edged's embedded MQTT broker: mochi-mqtt
// (github.com/mochi-mqtt/server/v2) with the listeners, limits and
// safeguards a gateway on a small board needs. It serves MQTT 3.1, 3.1.1 and
// 5.0 over tcp, tls (optionally mutual) and websocket listeners; logins from
// a mosquitto_passwd users file and a Mosquitto ACL per listener; retained
// messages, wills and persistent sessions, kept in SQLite under state_dir.
// The rest of the daemon publishes and subscribes in-process (Publish,
// Subscribe) and may refuse messages before they are acknowledged
// (SetInterceptor), which the store-and-forward buffer uses.
//
// Every network connection is guarded: packets are framed and checked with
// mochi's own decoder, under recover, before mochi reads them, so a packet
// that would panic mochi (upstream issue #501) or announce a size beyond
// max_packet_size (#502) closes that one connection and is counted. A
// connected subscriber whose queue is nearly full (messages or
// max_queued_bytes) holds back the network clients publishing to it: the
// broker stops reading them, and TCP slows them to its pace (flowControl).
// One that stays full past a bound is stuck: its messages beyond
// max_inflight + max_queued, like an offline session's, or past
// message_expiry, are dropped, counted in Stats and logged once per client
// and state change, never silently.
//
// It deliberately knows nothing of adapters, the buffer or the uplink, and
// does not bridge to other brokers.
package broker
