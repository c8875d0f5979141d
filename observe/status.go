package observe

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// statusDoc is GET /api/status, what the page shows.
type statusDoc struct {
	Gateway  string      `json:"gateway"`
	Version  string      `json:"version"`
	UptimeS  int64       `json:"uptime_s"`
	Healthy  bool        `json:"healthy"`
	Problems []string    `json:"problems,omitempty"`
	Broker   *brokerDoc  `json:"broker,omitempty"`
	Uplink   *uplinkDoc  `json:"uplink,omitempty"`
	Devices  []deviceDoc `json:"devices"`
}

type brokerDoc struct {
	Clients  int64 `json:"clients"`
	Received int64 `json:"received"`
	Sent     int64 `json:"sent"`
	Dropped  int64 `json:"dropped"`
}

type uplinkDoc struct {
	Connected      bool    `json:"connected"`
	Server         string  `json:"server,omitempty"`
	SinceS         float64 `json:"since_s,omitempty"` // seconds since Connected last changed
	LastError      string  `json:"last_error,omitempty"`
	Delivered      uint64  `json:"delivered"`
	Buffered       int64   `json:"buffered"`
	BufferedBytes  int64   `json:"buffered_bytes"`
	BufferMaxBytes int64   `json:"buffer_max_bytes"`
	OldestAgeS     float64 `json:"oldest_age_s"`
}

type deviceDoc struct {
	Name   string     `json:"name"`
	Kind   string     `json:"kind"`
	Bus    string     `json:"bus,omitempty"`
	Online bool       `json:"online"`
	Points []pointDoc `json:"points"`
}

// pointDoc is one point's last reading. Value is the JSON value as
// published; AgeS is -1 before the first reading.
type pointDoc struct {
	Name    string          `json:"name"`
	Value   json.RawMessage `json:"value,omitempty"`
	Unit    string          `json:"unit,omitempty"`
	Quality string          `json:"quality"` // good | bad | none (no reading yet)
	Error   string          `json:"error,omitempty"`
	AgeS    float64         `json:"age_s"`
}

func (s *Server) statusDoc(now time.Time) statusDoc {
	src := s.src
	d := statusDoc{Gateway: src.Gateway, Version: src.Version, UptimeS: int64(now.Sub(src.Started).Seconds())}
	if src.Liveness != nil {
		for _, err := range src.Liveness() {
			d.Problems = append(d.Problems, err.Error())
		}
	}
	d.Healthy = len(d.Problems) == 0
	if src.Broker != nil {
		b := src.Broker()
		d.Broker = &brokerDoc{Clients: b.ClientsConnected, Received: b.MessagesReceived, Sent: b.MessagesSent, Dropped: b.Dropped}
	}
	if src.Uplink != nil {
		u := src.Uplink()
		d.Uplink = &uplinkDoc{
			Connected: u.Connected, Server: u.Server, LastError: u.LastError, Delivered: u.Delivered,
			Buffered: u.Buffer.Messages, BufferedBytes: u.Buffer.Bytes, BufferMaxBytes: src.BufferMaxBytes,
			OldestAgeS: oldestAge(u.Buffer.Messages, u.Buffer.Oldest, now),
		}
		if !u.Since.IsZero() {
			d.Uplink.SinceS = max(0, now.Sub(u.Since).Seconds())
		}
	}
	online := s.online()
	d.Devices = make([]deviceDoc, len(src.Devices))
	for i, dev := range src.Devices {
		names, rs := s.last.snapshot(i)
		dd := deviceDoc{Name: dev.Name, Kind: dev.Kind, Bus: dev.Bus, Online: online[dev.Name], Points: make([]pointDoc, len(names))}
		for k, n := range names {
			dd.Points[k] = decodeReading(n, rs[k], now)
		}
		d.Devices[i] = dd
	}
	return d
}

// online reads each device's state from its adapter.
func (s *Server) online() map[string]bool {
	m := map[string]bool{}
	for _, f := range s.src.Modbus {
		for _, d := range f().Devices {
			m[d.Device] = d.Online
		}
	}
	for _, n := range s.src.Serial {
		m[n.Name] = n.Stats().Online
	}
	for _, n := range s.src.AT {
		m[n.Name] = n.Stats().Online
	}
	return m
}

// decodeReading reads a published payload: {"value":..,"unit":..} or
// {"quality":"bad","error":..} (payload = "json"), or a bare value
// (payload = "value").
func decodeReading(name string, r reading, now time.Time) pointDoc {
	p := pointDoc{Name: name, Unit: r.unit, Quality: "none", AgeS: -1}
	if r.at.IsZero() {
		return p
	}
	p.AgeS = max(0, now.Sub(r.at).Seconds())
	p.Quality = "good"
	var obj struct {
		Value   json.RawMessage `json:"value"`
		Unit    *string         `json:"unit"`
		Quality string          `json:"quality"`
		Error   string          `json:"error"`
		TS      string          `json:"ts"`
	}
	trimmed := bytes.TrimSpace(r.payload)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &obj) == nil {
		if obj.Unit != nil {
			p.Unit = *obj.Unit
		}
		// The reading's own time, where it has one: a retained reading
		// handed over at start is as old as it says, not new.
		if ts, err := time.Parse(time.RFC3339Nano, obj.TS); err == nil {
			p.AgeS = max(0, now.Sub(ts).Seconds())
		}
		if obj.Quality == "bad" || obj.Value == nil {
			p.Quality, p.Error = "bad", obj.Error
			return p
		}
		p.Value = obj.Value
		return p
	}
	if json.Valid(trimmed) {
		p.Value = trimmed
		return p
	}
	p.Value, _ = json.Marshal(strings.ToValidUTF8(string(r.payload), "\uFFFD"))
	return p
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.statusDoc(time.Now()))
	if err != nil {
		s.failed("status", err)
		http.Error(w, "status could not be encoded", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeBody(w, r, "application/json", b)
}

// writeBody writes b, gzipped when the client takes it and it is worth it:
// a status with 500 points is about 40 KB of JSON and under a tenth of that
// compressed, which matters on a Pi's Wi-Fi.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Add("Vary", "Accept-Encoding")
	if len(b) < 1024 || !acceptsGzip(r) {
		if _, err := w.Write(b); err != nil {
			s.failed("write", err)
		}
		return
	}
	h.Set("Content-Encoding", "gzip")
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
	_, err := zw.Write(b)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.failed("write", err)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
