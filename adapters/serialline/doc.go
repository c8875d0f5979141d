// Package serialline reads sensors that speak a line or frame protocol of
// their own on a UART or USB serial adapter (`T=21.5,H=40`, NMEA sentences,
// CSV) and turns every frame into points: the named groups of the configured
// regular expressions, published on {gateway}/{device}/{group}.
//
// A Device owns its port: it frames the byte stream (LF/CRLF lines, a custom
// delimiter, or start/end bytes, never buffering more than max_frame), sends
// an optional request every interval for poll-style sensors, writes what is
// published on {gateway}/{device}/tx when the device is writable, and keeps
// the retained {gateway}/{device}/status topic at online or offline: online
// while the port is open, and for a polled sensor only while it answers (it
// goes offline after 3 requests in a row get no frame back). A port
// that vanishes (USB unplug) is closed and reopened with backoff when its
// path comes back; nothing here ends the daemon.
//
// What it has in common with the AT adapter, which reads the same kind of
// port and turns replies into points the same way, lives in
// adapters/internal: the device with its port and status (serialdevice), the
// port keeper (serialport), the framer and patterns (framing) and the
// publication of status and points (mqttdevice).
//
// It deliberately knows nothing of the broker: it publishes to the small
// Publisher it is given.
package serialline
