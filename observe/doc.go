// Package observe is edged's HTTP server for the tools people point at a
// gateway: Prometheus scrapes GET /metrics, a load balancer or monitor
// probes GET /healthz (every part makes progress, the watchdog's signal) and
// GET /readyz (listeners open, uplink connected or buffering within
// bounds), and a browser on the LAN opens GET /, a status page that polls
// GET /api/status.
//
// It only reads: the parts' counters through the Stats functions it is
// given, their liveness through the checks it is given, and the last
// reading of each point through an in-process subscription to the local
// broker. It changes nothing, starts no part and is imported by cmd/edged
// only. Every request is served from copies taken under the parts' own
// short locks, and at most a few requests run at once, so a busy browser or
// scraper cannot slow polling or the broker.
package observe
