// Package modbus polls Modbus devices — RTU on a serial line, Modbus TCP, or
// RTU framed over TCP — and publishes each configured point on its own MQTT
// topic through a Publisher it is given. A Bus owns one port or connection
// and runs one transaction at a time, shared fairly by the devices on it.
//
// The read plan (plan.go) coalesces the points of a device into as few
// requests as possible and splits a merged read for good when the device
// answers Illegal Data Address. Decoding (decode.go) turns register bytes
// into values of every type and byte order. The poller (poller.go) keeps a
// fixed rate, publishes bad quality on change of state, marks devices
// offline and online, and reopens a vanished port with backoff. Writes
// (write.go) arrive on `<point topic>/set` and are interleaved with polling.
// Each transaction, open included, is one bounded operation for the systemd
// watchdog (package liveness): Stalled reports one that outlasts its
// device's timeout plus a margin.
//
// It deliberately knows nothing of the broker, the buffer or the uplink,
// and it neither loads config files, merges profiles nor checks or
// defaults a key: it receives a config.Bus that config validated and
// completed, with every device's full list of points.
package modbus
