package bridge

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// suspect is an entry the server dropped the connection over.
type suspect struct {
	seq     int64
	strikes int
}

// judge looks at a connection that ended (not at shutdown) for a message
// the upstream refuses. Mosquitto, for one, answers a PUBLISH it finds
// malformed (a topic with U+0001 or U+FFFF) by closing the connection,
// without a word; the message stays at the head of the queue, is sent
// first after every reconnect and stalls everything behind it.
//
// Which message it was is not known when several were in flight: the
// server acknowledges the ones before it and then closes, and those
// acknowledgements may reach paho after the close. So after the server
// closed a connection (not a timeout of ours or of the network) that
// delivered nothing, the entries that were in flight are sent again one at
// a time (careful, see oneAtATime); a drop with a single entry in flight
// is that entry's strike. When the same entry has been alone in flight at dead_letter_after
// drops in a row (3 by default), it is moved to the dead-letter table and
// the rest goes on, in order.
//
// Why 3: one drop is an ordinary blip; two with the same entry alone in
// flight can still be a flapping link or another client taking over the
// client id; a third, each time right after the entry went up alone, is the
// pattern of a refusal. A refused message costs four to six reconnects (a
// few seconds of backoff) before the queue moves again.
func (br *Bridge) judge(s *session, err error) {
	win := s.unconfirmed
	if len(win) == 0 || !droppedByServer(err) {
		return
	}
	head := win[0]
	if len(win) > 1 || head.tok == nil {
		// Several in flight (or it was not even sent): which one the
		// server refused is not known. After a connection that delivered
		// nothing at all they go up again one at a time to find out; a
		// drop in the middle of a flowing stream is taken for a blip, and
		// costs no slow resend.
		if !s.delivered {
			br.careful = max(br.careful, win[len(win)-1].seq)
		}
		return
	}
	if br.suspect.seq != head.seq {
		br.suspect = suspect{seq: head.seq}
	}
	br.suspect.strikes++
	if br.suspect.strikes < br.deadAfter {
		return
	}
	br.suspect = suspect{}
	br.setAside(head.seq, head.topic, fmt.Sprintf(
		"the server closed the connection %d times in a row while this message was the only one in flight (last: %v)",
		br.deadAfter, err))
}

// setAside moves one entry to the dead-letter table, counts and logs it.
// If the table cannot take it, the entry is skipped until edged restarts,
// so it still never holds up the queue.
func (br *Bridge) setAside(seq int64, topic, reason string) {
	if derr := br.buf.DeadLetter(seq, reason); derr != nil {
		br.skipped[seq] = true
		br.log.Error("uplink: a message the server cannot take could not be moved to the dead-letter table; it is skipped until edged restarts",
			"topic", shortTopic(topic), "seq", seq, "reason", reason, "err", derr)
		return
	}
	n := br.deadLetters.Add(1)
	br.log.Error("uplink: moved a message the server cannot take to the dead-letter table; the messages behind it go on",
		"topic", shortTopic(topic), "seq", seq, "reason", reason, "dead_letters", n)
	br.signal()
}

// droppedByServer reports whether a connection ended because the other
// side closed or reset it, rather than for silence (a timeout, an overdue
// acknowledgement, a missing ping response).
func droppedByServer(err error) bool {
	if err == nil || errors.Is(err, errAckOverdue) || errors.Is(err, errTokenRenew) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	msg := err.Error()
	return !strings.Contains(msg, "pingresp not received") && !strings.Contains(msg, "broken by timeout")
}
