package observe

import (
	_ "embed"
	"net/http"
)

// page is the status page: one file with its style and script inline, so
// it loads nothing from the internet (a gateway's LAN may have none). It
// renders GET /api/status every 2 s while it is visible.
//
//go:embed page.html
var page []byte

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'")
	h.Set("Cache-Control", "no-cache")
	s.writeBody(w, r, "text/html; charset=utf-8", page)
}
