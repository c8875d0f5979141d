// Package at drives modules that speak AT commands — ESP8266/ESP32 AT
// firmware, SIMCom and Quectel modems — on a serial port, and turns their
// answers into points.
//
// After every open it sends the init commands, then the queries every
// interval; the named groups of a query's pattern, matched against the reply
// lines, become points on {gateway}/{device}/{group}, exactly as for
// [[serial]] devices (numbers as numbers, everything else as strings). A
// query answered with an error or not at all publishes a bad-quality reading
// instead of a value, once when its points go bad and not again while they
// stay bad (adapters/internal/pointstate, as for Modbus). Unsolicited result codes matching a urcs pattern are
// recognised wherever they arrive, even inside a reply, and become points the
// same way. After reset_after consecutive timeouts the module is marked
// offline, the reset command (if any) is sent and init runs again.
//
// The dialogue parser (Dialogue) handles echo on or off, replies split across
// reads, and the final result codes OK, ERROR, +CME ERROR: n, +CMS ERROR: n,
// FAIL, SEND OK and SEND FAIL. One command is outstanding at a time.
//
// For commissioning, a publish of a command (AT+GMR) on {gateway}/{device}/at
// is sent to the module and answered on {gateway}/{device}/at/response with
// JSON {"command","lines","result"} (and "error" when there was no answer).
// It is on unless raw_commands = false. A raw command waits up to 10 s (or
// the module's timeout, if longer), and its timeout never counts towards
// reset_after. A retained message on .../at is never replayed.
//
// It deliberately does not handle data-mode exchanges (the ">" prompt of
// AT+CIPSEND and the like, CONNECT and +++): only line-oriented commands.
// It knows nothing of the broker: it publishes to the Publisher it is given.
package at
