package observe

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// check is the body of /healthz and /readyz: "ok" or "fail", and why.
type check struct {
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
}

// healthz is liveness: every part makes progress, the same signal that
// decides whether the systemd watchdog is pinged. A load balancer or
// monitor restarts or alerts on a 503.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	var problems []string
	if s.src.Liveness != nil {
		for _, err := range s.src.Liveness() {
			problems = append(problems, err.Error())
		}
	}
	s.writeCheck(w, problems)
}

// readyz is readiness: the broker's listeners are open and, with an
// uplink, it is connected or the buffer still has room (readings are kept,
// none dropped or refused).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	var problems []string
	if s.src.Listening != nil {
		if err := s.src.Listening(); err != nil {
			problems = append(problems, "broker: "+err.Error())
		}
	}
	if s.src.Uplink != nil {
		u := s.src.Uplink()
		if !u.Connected && s.src.BufferMaxBytes > 0 && u.Buffer.Bytes >= s.src.BufferMaxBytes {
			problems = append(problems, fmt.Sprintf("uplink: disconnected (%s) and the buffer is full (%d of %d bytes)",
				orNone(u.LastError), u.Buffer.Bytes, s.src.BufferMaxBytes))
		}
	}
	s.writeCheck(w, problems)
}

func orNone(s string) string {
	if s == "" {
		return "no error yet"
	}
	return s
}

func (s *Server) writeCheck(w http.ResponseWriter, problems []string) {
	c := check{Status: "ok", Problems: problems}
	code := http.StatusOK
	if len(problems) > 0 {
		c.Status, code = "fail", http.StatusServiceUnavailable
	}
	b, _ := json.Marshal(c) // strings only: always marshals
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if _, err := w.Write(append(b, '\n')); err != nil {
		s.failed("write", err)
	}
}
