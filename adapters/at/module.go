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

	"go.bug.st/serial"

	"github.com/edged/edged/adapters/internal/framing"
	"github.com/edged/edged/adapters/internal/mqttdevice"
	"github.com/edged/edged/adapters/internal/serialport"
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
	Opens       uint64 // successful opens of the port
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
	name       string
	gateway    string
	path       string
	mode       *serial.Mode
	init       []string
	every      time.Duration
	timeout    time.Duration
	queries    []query
	urcs       []*regexp.Regexp
	reset      string
	resetAfter int
	raw        bool
	rawTimeout time.Duration
	out        *mqttdevice.Out
	status     *mqttdevice.Status
	sub        Subscriber
	log        *slog.Logger

	rawq chan rawRequest
	wg   sync.WaitGroup // replies published off the subscriber's goroutine

	mu    sync.Mutex
	stats Stats // but Online and PubErrors, kept by status and out
	open  bool

	points *mqttdevice.Points // by group name; touched by the session goroutine only
}

// New checks cfg, applies the defaults to its zero values (baud 115200,
// interval 30s, timeout 2s, reset_after 3, raw_commands on) and prepares a
// module; the port is opened by Run. log should already name the adapter and
// device; New adds the port.
func New(cfg config.ATDev, gateway string, pub Publisher, sub Subscriber, log *slog.Logger) (*Module, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		return nil, errors.New("at: name is empty")
	}
	where := fmt.Sprintf("at %q", cfg.Name)
	if cfg.Port == "" {
		return nil, fmt.Errorf("%s: port is empty", where)
	}
	if pub == nil {
		return nil, fmt.Errorf("%s: no publisher", where)
	}
	mode, err := serialport.PortMode(cfg.SerialPort, DefaultBaud)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	m := &Module{
		name: cfg.Name, gateway: gateway, path: cfg.Port, mode: mode,
		every: cfg.Interval.Duration, timeout: cfg.Timeout.Duration,
		reset: strings.TrimSpace(cfg.Reset), resetAfter: cfg.ResetAfter,
		raw:  cfg.RawCommands == nil || *cfg.RawCommands,
		sub:  sub,
		log:  log.With("port", cfg.Port), // the caller names the adapter and device
		rawq: make(chan rawRequest, rawQueue),
	}
	m.out = mqttdevice.NewOut(pub, m.log)
	m.status = mqttdevice.NewStatus(m.out, gateway, m.name, m.log)
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
	tmpl, format, err := mqttdevice.Output(cfg.Topic, cfg.Payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	m.points = mqttdevice.NewPoints(gateway, cfg.Name, tmpl, format)
	if m.raw && sub == nil {
		return nil, fmt.Errorf("%s: raw_commands needs a subscriber (or set raw_commands = false)", where)
	}
	return m, nil
}

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
	s.Online, s.PubErrors = m.status.Online(), m.out.Errors()
	return s
}

// Run drives the module until ctx ends and returns nil then. Port and module
// errors are logged, shown on the status topic and retried; they never end Run.
func (m *Module) Run(ctx context.Context) error {
	if m.raw {
		topic := m.gateway + "/" + m.name + "/at"
		unsub, err := mqttdevice.SubscribeCommands(m.sub, topic, m.log, m.onRaw, nil)
		if err != nil {
			m.log.Error("cannot subscribe; raw commands are off", "topic", topic, "err", err)
		} else {
			defer unsub()
		}
	}
	m.status.Begin()
	serialport.KeepOpen(ctx, m.path, m.mode, m.log, m.session, func(open bool) {
		m.mu.Lock()
		m.open = open
		if open {
			m.stats.Opens++
		}
		m.mu.Unlock()
		if !open {
			m.status.Set(false, "reason", "port closed")
		}
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
	m.out.Publish(m.gateway+"/"+m.name+"/at/response", b, 0, false)
}

// publishFields publishes the named groups of a match as points.
func (m *Module) publishFields(fields []framing.Field) {
	now := time.Now()
	for _, f := range fields {
		if m.out.Value(m.points.Get(f.Name), f.Value, now) {
			m.count(func(s *Stats) { s.Points++ })
		}
	}
}

// publishBad marks every point of a query as a failed read, once per
// change: a query that keeps failing publishes bad quality when it starts.
func (m *Module) publishBad(q query, err error) {
	now := time.Now()
	for _, n := range q.names {
		m.out.Bad(m.points.Get(n), err, now)
	}
}

func (m *Module) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}
