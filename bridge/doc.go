// Package bridge is edged's uplink: the connection to an upstream MQTT
// broker (github.com/eclipse/paho.mqtt.golang, MQTT 3.1.1) over TCP, TLS,
// mutual TLS or WebSocket.
//
// Forward rules pick local topics to send upstream. The bridge sees every
// local publish through Intercept, which the local broker calls before it
// acknowledges the publisher; a QoS 1 message a rule matches is committed to
// the buffer first, so the publisher's PUBACK means "on disk". Readings
// published in-process by the adapters have no PUBACK to wait for: they are
// queued for the buffer, in order, and the adapter goes on. A drainer
// sends the buffer in sequence order with a window of QoS 1 publishes in
// flight and removes an entry only when the upstream's PUBACK confirmed it.
// After a dropped connection everything unconfirmed is sent again, in the
// original order, from the buffer: paho's own reconnection and resending are
// switched off because paho can complete a publish without a PUBACK when the
// connection drops (paho #563) and does not keep order when it resends
// (#731): every connection gets a fresh paho client with a store that keeps
// nothing. Messages sent again are counted as possible duplicates (within
// one process; after a restart, what the last process had in flight goes up
// again without being counted).
//
// Nothing may stall the queue: a topic no upstream takes is refused at the
// forward step; a message the upstream answers by closing the connection,
// again and again, is moved to the buffer's dead-letter table (judge); a
// server that goes silent with a publish outstanding is dropped after
// ack_timeout; and no call into paho, nor shutdown, waits on the network
// for more than about a second.
//
// paho writes each packet with a write of its own; on the connections the
// bridge dials itself (mqtt://, mqtts://) those writes are gathered and sent
// together as soon as the previous write is done, and reads are buffered,
// which is what lets a drain keep up with a Mosquitto bridge.
//
// The upstream session is persistent (clean session off). The will message
// is a retained "offline" on {gateway}/status, and a retained "online"
// follows each connection. Downlink rules bring upstream topics into the
// local broker; those messages, like the bridge's own status on
// {gateway}/edged/uplink, are never forwarded back up even when a forward
// rule matches them.
//
// Effective QoS of a forwarded message: the rule's qos, raised to 1 when the
// local publish was QoS 1 or 2, because the durability promise covers every
// local QoS 1 message a forward rule matches.
//
// The package deliberately does not store anything itself (the buffer does)
// and does not speak to the local broker's network side: it gets a Publish
// function and is installed as the broker's interceptor by the daemon.
package bridge
