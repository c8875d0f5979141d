package observe

import (
	"strings"
	"sync"
	"time"
)

// Bounds on what the status page keeps, so that a client publishing on
// made-up point topics cannot grow the daemon's memory.
const (
	maxExtraPoints = 256  // points per device beyond the configured ones
	maxPayload     = 1024 // bytes of a reading kept for the page
)

// lastValues keeps the last message of every point topic of the configured
// devices, as the local broker delivers it. The handler runs on the
// publisher's path, so it only copies the payload under a short lock;
// decoding waits for a request.
type lastValues struct {
	gateway string
	devices []Device
	subs    []topicMatch

	mu     sync.Mutex
	points []map[string]*reading // per device, by point name
	order  [][]string            // per device, point names in the order first seen
}

// reading is one point's last message.
type reading struct {
	payload []byte
	at      time.Time
	unit    string // from the config; a JSON payload's own unit wins
}

// topicMatch turns a device's topic template into a subscription filter
// and reads the point name back out of a topic.
type topicMatch struct {
	filter      string
	level       int // which level holds {point}
	pre, suf    string
	device      int
	statusTopic string
}

func newLastValues(gateway string, devices []Device) *lastValues {
	lv := &lastValues{gateway: gateway, devices: devices,
		points: make([]map[string]*reading, len(devices)), order: make([][]string, len(devices))}
	for i, d := range devices {
		lv.points[i] = map[string]*reading{}
		for _, p := range d.Points {
			if _, dup := lv.points[i][p.Name]; !dup {
				lv.points[i][p.Name] = &reading{unit: p.Unit}
				lv.order[i] = append(lv.order[i], p.Name)
			}
		}
		if m, ok := matchFor(gateway, d, i); ok {
			lv.subs = append(lv.subs, m)
		}
	}
	return lv
}

// matchFor builds the filter of device d's template: {gateway} and {device}
// filled in, the level holding {point} replaced by "+".
func matchFor(gateway string, d Device, i int) (topicMatch, bool) {
	t := strings.NewReplacer("{gateway}", gateway, "{device}", d.Name).Replace(d.Topic)
	levels := strings.Split(t, "/")
	for n, l := range levels {
		pre, suf, ok := strings.Cut(l, "{point}")
		if !ok {
			continue
		}
		levels[n] = "+"
		return topicMatch{
			filter: strings.Join(levels, "/"), level: n, pre: pre, suf: suf, device: i,
			statusTopic: gateway + "/" + d.Name + "/status",
		}, true
	}
	return topicMatch{}, false
}

// point returns the point name topic carries, or "".
func (m *topicMatch) point(topic string) string {
	if topic == m.statusTopic {
		return ""
	}
	levels := strings.Split(topic, "/")
	if m.level >= len(levels) {
		return ""
	}
	l := levels[m.level]
	if len(l) <= len(m.pre)+len(m.suf) || !strings.HasPrefix(l, m.pre) || !strings.HasSuffix(l, m.suf) {
		return ""
	}
	return l[len(m.pre) : len(l)-len(m.suf)]
}

// subscribe subscribes to every device's filter (once per distinct filter)
// and returns what undoes it.
func (lv *lastValues) subscribe(sub Subscriber) (func(), error) {
	var unsubs []func()
	undo := func() {
		for _, u := range unsubs {
			u()
		}
	}
	byFilter := map[string][]topicMatch{}
	var filters []string
	for _, m := range lv.subs {
		if _, ok := byFilter[m.filter]; !ok {
			filters = append(filters, m.filter)
		}
		byFilter[m.filter] = append(byFilter[m.filter], m)
	}
	for _, f := range filters {
		ms := byFilter[f]
		u, err := sub.Subscribe(f, func(topic string, payload []byte, _ bool) { lv.record(ms, topic, payload) })
		if err != nil {
			undo()
			return nil, err
		}
		unsubs = append(unsubs, u)
	}
	return undo, nil
}

// record keeps payload as the last reading of the point topic names. Where
// several devices share a filter (a template without {device}), the first
// that configures the point takes it.
func (lv *lastValues) record(ms []topicMatch, topic string, payload []byte) {
	now := time.Now()
	if len(payload) > maxPayload {
		payload = payload[:maxPayload]
	}
	lv.mu.Lock()
	defer lv.mu.Unlock()
	dev, name := -1, ""
	for _, m := range ms {
		n := m.point(topic)
		if n == "" {
			continue
		}
		if _, known := lv.points[m.device][n]; known || dev < 0 {
			dev, name = m.device, n
			if known {
				break
			}
		}
	}
	if dev < 0 {
		return
	}
	r := lv.points[dev][name]
	if r == nil {
		if len(lv.order[dev]) >= len(lv.devices[dev].Points)+maxExtraPoints {
			return
		}
		r = &reading{}
		lv.points[dev][name] = r
		lv.order[dev] = append(lv.order[dev], name)
	}
	r.payload = append(r.payload[:0], payload...)
	r.at = now
}

// snapshot copies device i's readings in order.
func (lv *lastValues) snapshot(i int) (names []string, readings []reading) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	names = append(names, lv.order[i]...)
	readings = make([]reading, len(names))
	for k, n := range names {
		r := lv.points[i][n]
		readings[k] = reading{payload: append([]byte(nil), r.payload...), at: r.at, unit: r.unit}
	}
	return names, readings
}
