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

// Defaults applied to zero config values.
const (
	DefaultBaud       = 115200
	DefaultInterval   = 30 * time.Second
	DefaultTimeout    = 2 * time.Second
	DefaultResetAfter = 3
)

// Raw command limits: commissioning commands are short single lines.
const (
	rawQueue   = 8
	maxRawCmd  = 256
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

// New checks cfg, applies the defaults to its zero values (baud 115200,
// interval 30s, timeout 2s, reset_after 3, raw_commands on) and prepares a
// module; the port is opened by Run. log should already name the adapter and
// device; New adds the port.
func New(cfg config.ATDev, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Module, error) {
	dev, err := serialdevice.New(serialdevice.Config{Kind: "at", Name: cfg.Name, Port: cfg.SerialPort,
		DefaultBaud: DefaultBaud, Topic: cfg.Topic, Payload: cfg.Payload, OpLimit: longestCommand(cfg)}, gateway, pub, log)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("at %q", cfg.Name)
	m := &Module{
		dev:   dev,
		every: cfg.Interval.Duration, timeout: cfg.Timeout.Duration,
		reset: strings.TrimSpace(cfg.Reset), resetAfter: cfg.ResetAfter,
		raw:  cfg.RawCommands == nil || *cfg.RawCommands,
		sub:  sub,
		log:  dev.Log,
		rawq: make(chan rawRequest, rawQueue),
	}
	if m.every <= 0 {
		m.every = DefaultInterval
	}
	if m.timeout <= 0 {
		m.timeout = DefaultTimeout
	}
	m.rawTimeout = max(m.timeout, rawTimeout)
	if m.resetAfter < 0 {
		return nil, fmt.Errorf("%s: reset_after %d is negative", where, cfg.ResetAfter)
	}
	if m.resetAfter == 0 {
		m.resetAfter = DefaultResetAfter
	}
	if m.reset != "" {
		if err := checkCommand(m.reset); err != nil {
			return nil, fmt.Errorf("%s: reset: %w", where, err)
		}
	}
	for i, c := range cfg.Init {
		c = strings.TrimSpace(c)
		if err := checkCommand(c); err != nil {
			return nil, fmt.Errorf("%s: init[%d]: %w", where, i, err)
		}
		m.init = append(m.init, c)
	}
	for i, q := range cfg.Queries {
		mq := query{command: strings.TrimSpace(q.Command), timeout: q.Timeout.Duration}
		if err := checkCommand(mq.command); err != nil {
			return nil, fmt.Errorf("%s: queries[%d].command: %w", where, i, err)
		}
		if mq.timeout <= 0 {
			mq.timeout = m.timeout
		}
		if q.Pattern != "" {
			if mq.re, err = regexp.Compile(q.Pattern); err != nil {
				return nil, fmt.Errorf("%s: queries[%d].pattern: %w", where, i, err)
			}
			// A pattern without named groups only checks the reply's shape.
			mq.names = framing.GroupNames(mq.re)
		}
		m.queries = append(m.queries, mq)
	}
	for i, u := range cfg.URCs {
		re, err := regexp.Compile(u.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%s: urcs[%d].pattern: %w", where, i, err)
		}
		if u.Pattern == "" {
			return nil, fmt.Errorf("%s: urcs[%d].pattern is empty and would match every line", where, i)
		}
		m.urcs = append(m.urcs, re)
	}
	if m.raw && sub == nil {
		return nil, fmt.Errorf("%s: raw_commands needs a subscriber (or set raw_commands = false)", where)
	}
	return m, nil
}

// longestCommand is the longest a command may wait for its answer under
// cfg, raw commands included, with the defaults applied: the watchdog's
// bound for one command, before its margin.
func longestCommand(cfg config.ATDev) time.Duration {
	base := cfg.Timeout.Duration
	if base <= 0 {
		base = DefaultTimeout
	}
	longest := max(base, rawTimeout)
	for _, q := range cfg.Queries {
		longest = max(longest, q.Timeout.Duration)
	}
	return longest
}

// Stalled reports a port open or a command that has lasted past its bound
// (nil while the module makes progress or waits); the daemon stops pinging
// the systemd watchdog while it does.
func (m *Module) Stalled() error { return m.dev.Stalled() }

// checkCommand refuses what cannot be sent as one AT command line.
func checkCommand(c string) error {
	switch {
	case c == "":
		return errors.New("empty command")
	case strings.ContainsAny(c, "\r\n\x00"):
		return errors.New("a command is one line; CR, LF and NUL are added or refused by edged")
	case len(c) > maxRawCmd:
		return fmt.Errorf("command longer than %d bytes", maxRawCmd)
	}
	return nil
}

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
	if err := checkCommand(cmd); err != nil {
		refuse(err.Error())
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
