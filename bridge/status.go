package bridge

import (
	"context"
	"encoding/json"
	"time"
)

// setConnected records and logs a new connection.
func (br *Bridge) setConnected(srv server) {
	br.connects.Add(1)
	br.mu.Lock()
	br.st.Connected = true
	br.st.Server = srv.display
	br.st.Since = time.Now()
	br.st.LastError = ""
	br.mu.Unlock()
	br.connected.Store(true)
	br.log.Info("uplink connected", "server", srv.display, "client_id", br.clientID)
	br.signal()
}

// setDisconnected records and logs the end of a connection.
func (br *Bridge) setDisconnected(srv server, err error, shutdown bool) {
	why := "shutting down"
	if !shutdown && err != nil {
		why = explain(err)
	}
	br.mu.Lock()
	br.st.Connected = false
	br.st.Subscribed = false
	br.st.Since = time.Now()
	br.st.LastError = why
	br.mu.Unlock()
	br.connected.Store(false)
	if shutdown {
		br.log.Info("uplink disconnected", "server", srv.display, "reason", why)
	} else {
		br.log.Warn("uplink disconnected", "server", srv.display, "reason", why)
	}
	br.signal()
}

// connectFailed counts a failed attempt and logs it when the reason is new,
// so an upstream that stays away for a day makes one line, not thousands.
// The count goes up last: whoever sees it sees the reason in Stats and the
// log too.
func (br *Bridge) connectFailed(srv server, err error) {
	defer br.connectFailures.Add(1)
	why := explain(err)
	br.mu.Lock()
	repeat := br.st.LastError == why && br.st.Server == srv.display
	br.st.Server = srv.display
	br.st.LastError = why
	br.mu.Unlock()
	if !repeat {
		br.log.Warn("uplink connect failed", "server", srv.display, "reason", why)
		br.signal()
	}
}

func (br *Bridge) signal() {
	select {
	case br.changed <- struct{}{}:
	default:
	}
}

// status is the JSON of the retained {gateway}/edged/uplink topic.
type status struct {
	Connected          bool    `json:"connected"`
	Server             string  `json:"server"`
	Since              string  `json:"since,omitempty"`
	LastError          string  `json:"last_error,omitempty"`
	Buffered           int64   `json:"buffered"`
	BufferedBytes      int64   `json:"buffered_bytes"`
	OldestAgeS         float64 `json:"oldest_age_s"`
	Dropped            uint64  `json:"dropped"`
	DroppedFull        uint64  `json:"dropped_full"`
	Expired            uint64  `json:"expired"`
	Rejected           uint64  `json:"rejected"`
	LostOnOpen         uint64  `json:"lost_on_open"` // missing from the file at start
	Damaged            uint64  `json:"damaged"`      // lost to unreadable rows
	DroppedQoS0        uint64  `json:"dropped_qos0"`
	Delivered          uint64  `json:"delivered"`
	DuplicatesPossible uint64  `json:"duplicates_possible"`
	Downlinked         uint64  `json:"downlinked"`
	Unforwardable      uint64  `json:"unforwardable"`
	DeadLetters        int64   `json:"dead_letters"`
}

func (br *Bridge) statusJSON(now time.Time) []byte {
	s := br.Stats()
	st := status{
		Connected:          s.Connected,
		Server:             s.Server,
		LastError:          s.LastError,
		Buffered:           s.Buffer.Messages,
		BufferedBytes:      s.Buffer.Bytes,
		DroppedFull:        s.Buffer.DroppedFull,
		Expired:            s.Buffer.Expired,
		Rejected:           s.Buffer.Rejected,
		LostOnOpen:         s.Buffer.LostOnOpen,
		Damaged:            s.Buffer.Damaged,
		DroppedQoS0:        s.DroppedQoS0,
		Delivered:          s.Delivered,
		DuplicatesPossible: s.DuplicatesPossible,
		Downlinked:         s.Downlinked,
		Unforwardable:      s.Unforwardable,
		DeadLetters:        s.DeadLetters,
	}
	st.Dropped = st.DroppedFull + st.Expired + st.DroppedQoS0
	if !s.Since.IsZero() {
		st.Since = s.Since.UTC().Format(time.RFC3339Nano)
	}
	if !s.Buffer.Oldest.IsZero() && s.Buffer.Messages > 0 {
		st.OldestAgeS = max(0, now.Sub(s.Buffer.Oldest).Seconds())
	}
	b, _ := json.Marshal(st) // a struct of plain fields always marshals
	return b
}

// statusLoop publishes the status topic at start, on every connection
// change and every statusEvery, and a last time when ctx ends (after the
// connection is closed).
func (br *Bridge) statusLoop(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		br.publishStatus()
		select {
		case <-ctx.Done():
			br.publishStatus()
			return
		case <-t.C:
		case <-br.changed:
		}
	}
}

func (br *Bridge) publishStatus() {
	br.statusing.Busy("publishing the status")
	defer br.statusing.Idle()
	if err := br.publishLocal(br.uplinkTopic, br.statusJSON(time.Now()), 1, true); err != nil {
		br.log.Debug("uplink: publishing status failed", "err", err)
	}
}
