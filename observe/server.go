package observe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edged/edged/config"
)

// maxConcurrent bounds the requests served at once: enough for a scraper,
// a probe and a few browsers, few enough that they cannot take a Pi Zero's
// only core from the pollers.
const maxConcurrent = 4

// loginChecker checks a login: config.HTTP.Users, the users_file config
// loaded.
type loginChecker interface {
	Check(user, password string) bool
}

// Server is the HTTP server. Make one with New and run it with Run.
type Server struct {
	cfg   config.HTTP
	users loginChecker // nil: no users_file
	src   Sources
	log   *slog.Logger
	last  *lastValues
	reg   *prometheus.Registry
	srv   *http.Server
	tls   *tls.Config

	listening chan struct{}
	addr      atomic.Pointer[net.Addr]
	slots     chan struct{}

	requests, refusedLogins, busy, errs atomic.Uint64
}

// New prepares the server for cfg (cfg.Address must be set) as config.Load
// made it: the users file and the TLS certificate loaded (cfg.Users,
// cfg.Certificate, a bad file reported with its line) and allow_anonymous
// set.
func New(cfg config.HTTP, src Sources, log *slog.Logger) (*Server, error) {
	if cfg.Address == "" {
		return nil, errors.New("http: no address")
	}
	if cfg.UsersFile != "" && cfg.Users == nil {
		return nil, errors.New("http: users_file is set but no users were loaded (config.Load loads them)")
	}
	if cfg.AllowAnonymous == nil {
		// Only a config built in code without config.DefaultHTTP gets
		// here; guessing would open or close the server behind the
		// user's back.
		return nil, errors.New("http: allow_anonymous not set (a config from config.Load or config.DefaultHTTP has it)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, src: src, log: log,
		last:      newLastValues(src.Gateway, src.Devices),
		listening: make(chan struct{}),
		slots:     make(chan struct{}, maxConcurrent),
	}
	if cfg.CertFile != "" && cfg.Certificate == nil {
		// Only a config that did not go through config.Load gets here;
		// serving plain HTTP where HTTPS was asked for would be worse
		// than not starting.
		return nil, errors.New("http: cert_file is set but its certificate was not loaded (config.Load loads it)")
	}
	if cfg.Users != nil {
		s.users = cfg.Users
	}
	if cfg.Certificate != nil {
		s.tls = &tls.Config{Certificates: []tls.Certificate{*cfg.Certificate}, MinVersion: tls.VersionTLS12}
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&partsCollector{src: src, srv: s},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:            promLog{s},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 1,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/status", s.status)
	mux.HandleFunc("GET /{$}", s.page)
	s.srv = &http.Server{
		Handler:           s.guard(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(countingHandler{s.log.Handler(), &s.errs}, slog.LevelDebug),
		TLSConfig:         s.tls,
	}
	return s, nil
}

// Listening is closed once Run has opened the socket.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr is the bound address once Listening is closed (a configured port 0
// reads as the real port), nil before.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Run subscribes to the points' topics, listens and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.src.Subscriber != nil {
		unsub, err := s.last.subscribe(s.src.Subscriber)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		defer unsub()
	}
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	a := ln.Addr()
	s.addr.Store(&a)
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("http listening", "address", scheme+"://"+a.String())
	close(s.listening)

	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(stop); err != nil {
		_ = s.srv.Close()
	}
	<-done
	return nil
}

// guard logs in, bounds concurrency and counts every request.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if !s.allowed(r) {
			s.refusedLogins.Add(1)
			s.log.Debug("http login refused", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Basic realm="edged", charset="UTF-8"`)
			http.Error(w, "login required", http.StatusUnauthorized)
			return
		}
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.busy.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// allowed applies the access rule: a users file means every request logs
// in; without one, allow_anonymous (config's default: loopback only).
func (s *Server) allowed(r *http.Request) bool {
	if s.users != nil {
		u, p, ok := r.BasicAuth()
		return ok && s.users.Check(u, p)
	}
	return *s.cfg.AllowAnonymous
}

// failed counts and logs an error met while answering a request.
func (s *Server) failed(what string, err error) {
	s.errs.Add(1)
	s.log.Debug("http "+what, "err", err)
}

// promLog receives the metrics handler's errors.
type promLog struct{ s *Server }

func (l promLog) Println(v ...any) { l.s.failed("metrics", errors.New(fmt.Sprint(v...))) }

// countingHandler counts what net/http logs (bad TLS handshakes, broken
// requests) before passing it on at debug level: counted always, shown
// only when asked for.
type countingHandler struct {
	slog.Handler
	n *atomic.Uint64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}
