package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/edged/edged/buffer"
	"github.com/edged/edged/telemetry"
)

// gatherWindow is how long the first reading of a device waits for the
// other points of the same poll before the cloud post goes to the buffer.
//
// Why before the buffer, and what it costs: a poll publishes its points
// one by one, and the buffer's entries are what is sent, one message each;
// so the points are gathered here. Only an adapter's readings are gathered:
// nobody waits for their acknowledgement, and they are already held in
// memory on their way to the buffer (inproc.go), so the window lengthens
// that stretch by at most gatherWindow; a crash within it loses what was
// gathered, as it loses the in-process backlog. A network client's QoS 1
// reading is never gathered: its PUBACK waits for its own commit, as the
// durability promise says. A second value of a point already gathered (the
// next poll came first) sends the gathered post at once, so a property's
// values stay in order and none is overwritten.
const gatherWindow = 200 * time.Millisecond

// gathering is the cloud posts being gathered, per device: the local topic
// of a reading without its last level.
type gathering struct {
	mu      sync.Mutex
	pending map[string]*gathered
}

type gathered struct {
	params map[string]property
	timer  *time.Timer
	sent   bool
}

// gather adds an adapter's reading to its device's post.
func (br *Bridge) gather(m telemetry.Message) {
	name, p, ok := br.readingProperty(m)
	if !ok {
		return
	}
	device := m.Topic[:max(strings.LastIndexByte(m.Topic, '/'), 0)]
	g := &br.gathering
	g.mu.Lock()
	if g.pending == nil {
		g.pending = map[string]*gathered{}
	}
	cur := g.pending[device]
	var full *gathered
	if cur != nil {
		if _, again := cur.params[name]; again {
			full, cur = cur, nil
			full.sent = true
			full.timer.Stop()
			delete(g.pending, device)
		}
	}
	if cur == nil {
		cur = &gathered{params: map[string]property{}}
		g.pending[device] = cur
		this := cur
		cur.timer = time.AfterFunc(gatherWindow, func() { br.sendGathered(device, this) })
	}
	cur.params[name] = p
	g.mu.Unlock()
	if full != nil {
		br.bufferPost(full.params)
	}
}

// sendGathered sends a device's post when its window closes, unless it was
// sent already.
func (br *Bridge) sendGathered(device string, this *gathered) {
	g := &br.gathering
	g.mu.Lock()
	if this.sent {
		g.mu.Unlock()
		return
	}
	this.sent = true
	delete(g.pending, device)
	g.mu.Unlock()
	br.bufferPost(this.params)
}

// flushGathered sends every post still gathering (Run is ending).
func (br *Bridge) flushGathered() {
	g := &br.gathering
	g.mu.Lock()
	var all []map[string]property
	for device, cur := range g.pending {
		cur.sent = true
		cur.timer.Stop()
		all = append(all, cur.params)
		delete(g.pending, device)
	}
	g.mu.Unlock()
	for _, p := range all {
		br.bufferPost(p)
	}
}

// bufferPost queues a cloud post for the buffer, as an in-process message.
func (br *Bridge) bufferPost(params map[string]property) {
	topic, payload := br.cloud.post(params)
	m := telemetry.Message{Topic: topic, Payload: payload, QoS: 1}
	switch br.putInproc(m) {
	case queued:
		return
	case queueFull:
		br.refused.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	if err := br.buf.Append(ctx, m); err != nil {
		br.refused.Add(1)
		if !errors.Is(err, buffer.ErrFull) {
			br.log.Warn("uplink: a cloud post could not be buffered", "err", fmt.Errorf("%s: %w", topic, err))
		}
	}
}
