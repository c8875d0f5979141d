// Package pointstate decides, for one point of one device, whether a reading
// is published now: a good value when it moved beyond the point's deadband,
// when the heartbeat is due, or when the point comes back from bad quality;
// a failed reading only when the point goes bad, not on every failed cycle
// while it stays bad. Every adapter keeps one State per point, so Modbus
// registers, [[serial]] fields and AT query groups follow the same rule.
//
// It deliberately neither builds payloads nor publishes: the adapter does
// both when State says so.
package pointstate
