package bridge

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxTopicLen is the longest topic MQTT can carry: its length is a 16-bit
// number on the wire, and paho cuts a longer one short without a word.
const maxTopicLen = 65535

// remoteTopicProblem says why no upstream broker would take topic, or "".
// It refuses what MQTT forbids (not UTF-8, U+0000, longer than 65535
// bytes) and what MQTT says a topic should not hold and Mosquitto refuses
// by dropping the connection: the control characters U+0001..U+001F and
// U+007F..U+009F, and the Unicode non-characters (U+FDD0..U+FDEF and the
// last two code points of every plane, U+FFFE and U+FFFF among them).
func remoteTopicProblem(topic string) string {
	if len(topic) > maxTopicLen {
		return fmt.Sprintf("it is %d bytes long, more than MQTT's 65535", len(topic))
	}
	ascii := true
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("it holds the control character U+%04X", c)
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if ascii {
		return ""
	}
	if !utf8.ValidString(topic) {
		return "it is not valid UTF-8"
	}
	for _, r := range topic {
		switch {
		case r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("it holds the control character U+%04X", r)
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			return fmt.Sprintf("it holds the Unicode non-character U+%04X", r)
		}
	}
	return ""
}

// storedTopicProblem says why an entry read from the buffer cannot go up
// as an MQTT PUBLISH at all, or "": an empty topic, a wildcard, invalid
// UTF-8, U+0000 or more than 65535 bytes. The forward step never stores
// such a topic; a damaged file salvaged at start can hold one, and sending
// it would only make the server drop the connection. Characters MQTT
// merely discourages are left to the server (see judge).
func storedTopicProblem(topic string) string {
	switch {
	case topic == "":
		return "the stored topic is empty"
	case strings.ContainsAny(topic, "+#"):
		return "the stored topic holds a wildcard"
	case strings.IndexByte(topic, 0) >= 0:
		return "the stored topic holds U+0000"
	case !utf8.ValidString(topic):
		return "the stored topic is not valid UTF-8"
	case len(topic) > maxTopicLen:
		return fmt.Sprintf("the stored topic is %d bytes long, more than MQTT's 65535", len(topic))
	}
	return ""
}

// shortTopic shortens a topic for a log line.
func shortTopic(t string) string {
	const keep = 200
	if len(t) <= keep {
		return t
	}
	return fmt.Sprintf("%s... (%d bytes)", t[:keep], len(t))
}

// rateLog lets a repeated log line through once a minute, counting the
// occurrences it held back.
type rateLog struct {
	mu   sync.Mutex
	last time.Time
	held int
}

const rateLogEvery = time.Minute

// allow reports whether to log now and how many occurrences were held back
// since the last line.
func (l *rateLog) allow(now time.Time) (held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < rateLogEvery {
		l.held++
		return 0, false
	}
	held, l.held, l.last = l.held, 0, now
	return held, true
}
