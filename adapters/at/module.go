package at

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/edged/edged/adapters/internal/framing"
	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/serialdevice"
	"github.com/edged/edged/config"
)

// Raw command limits (config.ATCommandProblem bounds their length).
const (
	rawQueue   = 8
	rawTimeout = 10 * time.Second
)

// errTimeout is a command that got no final result code in time.
var errTimeout = errors.New("no final result code before the timeout")

// errReset says reset_after consecutive timeouts were reached.
var errReset = errors.New("too many consecutive timeouts")

// Publisher is where readings, status and raw replies go: the local broker.
type Publisher = mqttdevice.Publisher

// Subscriber delivers the raw commands published on {gateway}/{device}/at.
type Subscriber = mqttdevice.Subscriber

// Stats counts what a Module did since New.
type Stats struct {
	Online      bool   // the port is open and the module answers
	Opens       uint64 // successful opens of the port, the first included
	Commands    uint64 // commands sent
	Replies     uint64 // commands answered with OK
	Errors      uint64 // commands answered with ERROR, +CME ERROR, FAIL, ...
	Timeouts    uint64 // commands without a final result code in time
	Resets      uint64 // resets after reset_after consecutive timeouts
	URCs        uint64 // unsolicited result codes recognised
	Stray       uint64 // lines that were neither reply nor URC
	Points      uint64 // points published
	Unmatched   uint64 // OK replies to a query its pattern did not match
	RawCommands uint64 // raw commands answered on .../at/response
	PubErrors   uint64 // publishes the Publisher refused
}

type query struct {
	command string
	re      *regexp.Regexp // nil: the query only checks that the module answers
	names   []string
	timeout time.Duration
}

type rawRequest struct{ command string }

// Module is one [[at]] module.
type Module struct {
	dev        *serialdevice.Device // name, port, status, points
	init       []string
	every      time.Duration
	timeout    time.Duration
	queries    []query
	urcs       []*regexp.Regexp
	reset      string
	resetAfter int
	raw        bool
	rawTimeout time.Duration
	sub        Subscriber
	log        *slog.Logger

	rawq chan rawRequest
	wg   sync.WaitGroup // replies published off the subscriber's goroutine

	mu    sync.Mutex
	stats Stats // but Online, PubErrors and Opens, kept by dev
	open  bool
}

// New prepares a module for cfg as config.Load (or config.Check) validated
// and completed it: commands checked and trimmed, patterns compiled, the
// defaults set. It converts and allocates; the port is opened by Run. log
// should already name the adapter and device; New adds the port. sub may be
// nil when raw_commands is off.
func New(cfg config.ATDev, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Module, error) {
	if cfg.Interval.Duration <= 0 || cfg.Timeout.Duration <= 0 || cfg.ResetAfter < 1 || cfg.RawCommands == nil {
		// Only a config built in code without config.Check gets here.
		return nil, fmt.Errorf("at %q: interval, timeout, reset_after or raw_commands not set (a config from config.Load or config.Check has them)", cfg.Name)
	}
	raw := *cfg.RawCommands
	if raw && sub == nil {
		return nil, fmt.Errorf("at %q: raw_commands needs a subscriber (or set raw_commands = false)", cfg.Name)
	}
	dev, err := serialdevice.New(serialdevice.Config{Kind: "at", Name: cfg.Name, Port: cfg.SerialPort,
		Topic: cfg.Topic, Payload: cfg.Payload, OpLimit: longestCommand(cfg)}, gateway, pub, log)
	if err != nil {
		return nil, err
	}
	m := &Module{
		dev:   dev,
		init:  cfg.Init,
		every: cfg.Interval.Duration, timeout: cfg.Timeout.Duration,
		reset: cfg.Reset, resetAfter: cfg.ResetAfter,
		raw:  raw,
		sub:  sub,
		log:  dev.Log,
		rawq: make(chan rawRequest, rawQueue),
	}
	m.rawTimeout = max(m.timeout, rawTimeout)
	for _, q := range cfg.Queries {
		mq := query{command: q.Command, re: q.Regexp, timeout: q.Timeout.Duration}
		if mq.re != nil {
			// A pattern without named groups only checks the reply's shape.
			mq.names = framing.GroupNames(mq.re)
		}
		m.queries = append(m.queries, mq)
	}
	for _, u := range cfg.URCs {
		m.urcs = append(m.urcs, u.Regexp)
	}
	return m, nil
}

// longestCommand is the longest a command may wait for its answer under
// cfg, raw commands included: the watchdog's bound for one command, before
// its margin.
func longestCommand(cfg config.ATDev) time.Duration {
	longest := max(cfg.Timeout.Duration, rawTimeout)
	for _, q := range cfg.Queries {
		longest = max(longest, q.Timeout.Duration)
	}
	return longest
}

// Stalled reports a port open or a command that has lasted past its bound
// (nil while the module makes progress or waits); the daemon stops pinging
// the systemd watchdog while it does.
func (m *Module) Stalled() error { return m.dev.Stalled() }

// Stats returns a snapshot of the counters.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	s := m.stats
	m.mu.Unlock()
	s.Online, s.PubErrors, s.Opens = m.dev.Status.Online(), m.dev.Out.Errors(), m.dev.Opens()
	return s
}

// Run drives the module until ctx ends and returns nil then. Port and module
// errors are logged, shown on the status topic and retried; they never end Run.
func (m *Module) Run(ctx context.Context) error {
	if m.raw {
		defer m.dev.Commands(m.sub, "at", "raw commands", m.onRaw, nil)()
	}
	m.dev.Run(ctx, m.session, func(open bool) {
		m.mu.Lock()
		m.open = open
		m.mu.Unlock()
	})
	m.wg.Wait()
	return nil
}

// onRaw queues a raw command for the session; what cannot be queued is
// answered at once. A retained command (an old AT+RST or AT+CWJAP) never
// gets here: SubscribeCommands does not replay it at every start.
func (m *Module) onRaw(_ string, payload []byte) {
	cmd := strings.TrimSpace(string(payload))
	refuse := func(why string) {
		m.wg.Go(func() { m.respond(Reply{Command: cmd}, errors.New(why)) })
	}
	if prob := config.ATCommandProblem(cmd); prob != "" {
		refuse("the command " + prob) // the rule config applies to configured commands
		return
	}
	if len(cmd) < 2 || !strings.EqualFold(cmd[:2], "AT") {
		refuse("not an AT command (it must start with AT)")
		return
	}
	m.mu.Lock()
	open := m.open
	m.mu.Unlock()
	if !open {
		refuse("port not open")
		return
	}
	select {
	case m.rawq <- rawRequest{command: cmd}:
	default:
		refuse("busy: too many raw commands waiting")
	}
}

// respond publishes the answer to a raw command.
func (m *Module) respond(r Reply, err error) {
	out := struct {
		Command string   `json:"command"`
		Lines   []string `json:"lines"`
		Result  string   `json:"result"`
		Error   string   `json:"error,omitempty"`
	}{Command: r.Command, Lines: r.Lines, Result: r.Result}
	if out.Lines == nil {
		out.Lines = []string{}
	}
	if err != nil {
		out.Error = err.Error()
	}
	b, _ := json.Marshal(out)
	m.count(func(s *Stats) { s.RawCommands++ })
	m.dev.Out.Publish(m.dev.Gateway+"/"+m.dev.Name+"/at/response", b, 0, false)
}

// publishFields publishes the named groups of a match as points.
func (m *Module) publishFields(fields []framing.Field) {
	now := time.Now()
	for _, f := range fields {
		if m.dev.Out.Value(m.dev.Points.Get(f.Name), f.Value, now) {
			m.count(func(s *Stats) { s.Points++ })
		}
	}
}

// publishBad marks every point of a query as a failed read, once per
// change: a query that keeps failing publishes bad quality when it starts.
func (m *Module) publishBad(q query, err error) {
	now := time.Now()
	for _, n := range q.names {
		m.dev.Out.Bad(m.dev.Points.Get(n), err, now)
	}
}

func (m *Module) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}
