// Package framing is what the [[serial]] and [[at]] adapters do alike with
// the bytes of a port: cut the stream into frames (LF/CRLF lines, a custom
// delimiter, or start/end bytes, never buffering more than a maximum) and
// turn a frame into named fields with the named groups of regular
// expressions, numbers as numbers and everything else as strings.
//
// It deliberately neither reads ports nor publishes: it works on bytes and
// strings handed to it.
package framing
