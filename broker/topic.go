package broker

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"
)

// errBadTopic is what a guarded connection's Read returns once the client
// published on a topic name Mosquitto refuses (see checkTopicName).
var errBadTopic = fmt.Errorf("%w: invalid topic name", errMalformed)

// checkTopicName refuses a topic name that is not valid UTF-8 or holds a
// character MQTT forbids or discourages (1.5.4): U+0000, the control
// characters U+0001..U+001F and U+007F..U+009F, and the non-characters
// (U+FDD0..U+FDEF and the last two code points of every plane). Mosquitto
// 2.0.11 refuses all of them, and cloud brokers disconnect a bridge that
// forwards one, so edged refuses them when they are published, before they
// reach a subscriber or the store-and-forward buffer.
func checkTopicName(topic []byte) error {
	for i := 0; i < len(topic); {
		if c := topic[i]; c >= 0x20 && c < 0x7f { // printable ASCII, the common case
			i++
			continue
		}
		r, n := utf8.DecodeRune(topic[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return fmt.Errorf("%w: byte %d is not UTF-8", errBadTopic, i)
		case r <= 0x1f || r >= 0x7f && r <= 0x9f:
			return fmt.Errorf("%w: control character %U at byte %d", errBadTopic, r, i)
		case r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe:
			return fmt.Errorf("%w: non-character %U at byte %d", errBadTopic, r, i)
		}
		i += n
	}
	return nil
}

// publishTopic returns the topic name bytes of a PUBLISH body, nil when the
// body is too short to hold it (mochi's decoder then refuses it).
func publishTopic(body []byte) []byte {
	if len(body) < 2 {
		return nil
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n {
		return nil
	}
	return body[2 : 2+n]
}

// isBadTopic reports whether err is a refused topic name.
func isBadTopic(err error) bool { return errors.Is(err, errBadTopic) }

// onceSet remembers keys seen, to log something once per client. It is
// bounded: past 10 000 keys it starts over (a client may then be logged
// again).
type onceSet struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// first reports whether key is new, and remembers it.
func (o *onceSet) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[key]; ok {
		return false
	}
	if o.seen == nil || len(o.seen) >= 10000 {
		o.seen = map[string]struct{}{}
	}
	o.seen[key] = struct{}{}
	return true
}
