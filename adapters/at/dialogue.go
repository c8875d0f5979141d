package at

import (
	"regexp"
	"strings"

	"github.com/edged/edged/adapters/internal/framing"
)

// maxLine bounds one line of a module's output; longer ones are dropped.
const maxLine = 4096

// maxReplyLines bounds the lines kept for one reply, so a module that never
// says OK cannot make the reply grow without bound before the timeout.
const maxReplyLines = 256

// Reply is a module's answer to one command.
type Reply struct {
	Command string   // as sent, without CR LF
	Lines   []string // every line before the final result code, echo and URCs left out
	Result  string   // the final result code: OK, ERROR, +CME ERROR: 10, FAIL, ...
}

// OK reports whether the final result code says the command succeeded.
func (r Reply) OK() bool { return r.Result == "OK" || r.Result == "SEND OK" }

// Event is what one complete line of module output turned out to be.
type Event struct {
	Line  string
	URC   int    // index of the URC pattern the line matched, or -1
	Reply *Reply // set when the line was the final result code of the command
}

// Stray reports whether the line was neither a URC nor part of a reply:
// output while no command was waiting, such as a late answer or boot noise.
func (e Event) Stray() bool { return e.URC < 0 && e.Reply == nil }

// Dialogue parses a module's output in the AT dialogue: a command's reply is
// every line up to a final result code; the command's echo (when echo is on)
// is dropped; a line matching a URC pattern is unsolicited wherever it comes,
// even between a command and its final result code, and never joins a reply.
// Output may arrive in chunks of any size. Only one command is outstanding at
// a time; the caller keeps to that and applies the timeout.
//
// A Dialogue is not safe for concurrent use.
type Dialogue struct {
	lines *framing.Framer
	urcs  []*regexp.Regexp

	pending bool
	reply   Reply
	echoed  bool // the echo, or a reply line where it would be, has been seen
	dropped int  // reply lines beyond maxReplyLines
}

// NewDialogue returns a parser that recognises the given URC patterns.
func NewDialogue(urcs []*regexp.Regexp) *Dialogue {
	f, _ := framing.NewFramer(framing.FrameSpec{Max: maxLine}) // line framing cannot fail
	return &Dialogue{lines: f, urcs: urcs}
}

// Begin starts waiting for the reply to cmd, which the caller sends.
func (d *Dialogue) Begin(cmd string) {
	d.pending = true
	d.reply = Reply{Command: cmd}
	d.echoed = false
	d.dropped = 0
}

// Abort stops waiting for a reply, after a timeout; later lines are strays.
func (d *Dialogue) Abort() (partial Reply) {
	partial = d.reply
	d.pending = false
	d.reply = Reply{}
	return partial
}

// Pending reports whether a command is waiting for its final result code.
func (d *Dialogue) Pending() bool { return d.pending }

// Reset forgets a partial line, as after the port was reopened.
func (d *Dialogue) Reset() {
	d.lines.Reset()
	d.Abort()
}

// Feed consumes module output and returns the events of the lines it completed.
func (d *Dialogue) Feed(p []byte) []Event {
	var evs []Event
	d.lines.Feed(p, func(b []byte) {
		line := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
		if line == "" {
			return
		}
		if ev, ok := d.line(line); ok {
			evs = append(evs, ev)
		}
	})
	return evs
}

// line classifies one non-empty line; ok is false for a dropped echo.
func (d *Dialogue) line(line string) (ev Event, ok bool) {
	ev = Event{Line: line, URC: -1}
	// The echo comes before any reply line, though a URC may precede it.
	if d.pending && !d.echoed && strings.EqualFold(line, strings.TrimSpace(d.reply.Command)) {
		d.echoed = true
		return ev, false
	}
	if d.pending && IsFinal(line) {
		r := d.reply
		r.Result = line
		ev.Reply = &r
		d.pending = false
		d.reply = Reply{}
		return ev, true
	}
	for i, re := range d.urcs {
		if re.MatchString(line) {
			ev.URC = i
			return ev, true
		}
	}
	if d.pending {
		d.echoed = true
		if len(d.reply.Lines) < maxReplyLines {
			d.reply.Lines = append(d.reply.Lines, line)
		} else {
			d.dropped++
		}
		return ev, false
	}
	return ev, true
}

// IsFinal reports whether line is a final result code that ends a reply.
func IsFinal(line string) bool {
	switch line {
	case "OK", "ERROR", "FAIL", "SEND OK", "SEND FAIL":
		return true
	}
	return strings.HasPrefix(line, "+CME ERROR:") || strings.HasPrefix(line, "+CMS ERROR:")
}
