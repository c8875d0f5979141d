// Package serialport keeps a serial port open for an adapter that owns one
// (the [[serial]] and [[at]] adapters): it turns line settings into a port
// mode, opens the port, reads it in a goroutine it owns and hands the bytes
// to the adapter's session; when the port fails (a USB adapter unplugged) it
// closes the old descriptor — a replugged adapter only comes back under the
// same name once that is gone — and opens the path again with backoff, for
// as long as it takes.
//
// It deliberately knows nothing of frames, commands or MQTT: what a session
// does with the bytes is the adapter's. Modbus RTU ports are opened by the
// Modbus client library instead, which needs the descriptor itself.
package serialport
