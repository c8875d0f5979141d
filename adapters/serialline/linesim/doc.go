// Package linesim is a simulated line sensor for `edged demo`: it makes a
// pseudo-terminal pair in-process (pure Go, no socat) and writes lines such as
// `T=21.5,H=40.2` to it once a second, with slowly varying values, so that the
// real serialline adapter reads the other end exactly as it would read a UART.
//
// It is for demonstrations and tests only; it simulates nothing else (no
// requests, no faults).
package linesim
