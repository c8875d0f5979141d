// Package buffer is edged's durable store-and-forward queue: the place a
// forwarded QoS 1 message waits, on disk, until the upstream broker has
// acknowledged it.
//
// It keeps one SQLite database (modernc.org/sqlite, pure Go) in WAL mode.
// Append returns only after the message is committed; concurrent appenders
// share one transaction (group commit) so a burst of publishers costs a
// handful of commits rather than one each. Entries carry a sequence number
// that grows in commit order, so reading in sequence order is delivering in
// local order. An entry leaves the queue only when it is acknowledged (Ack),
// or when the stated bounds push it out: max bytes under the drop-oldest
// policy, or max age. Both are counted in Stats and logged, never silent.
//
// The package deliberately knows nothing about MQTT sessions, forward rules
// or the uplink: the bridge decides what goes in and when something has been
// delivered. It also does not try to repair a damaged database file in
// place: Open runs SQLite's quick_check, and a file that fails it is moved
// aside, a new queue is started and every entry that can still be read
// whole is copied into it (the loss counted in Stats.Damaged), because a
// gateway that keeps forwarding new readings is worth more than one that
// refuses to start over old ones. A row that cannot be read while draining
// is skipped and counted, never allowed to stop the drain.
package buffer
