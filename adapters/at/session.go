package at

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edged/edged/adapters/internal/framing"
	"github.com/edged/edged/adapters/internal/serialport"
)

// session is one open period of the port: it owns the dialogue and is the
// only writer, so exactly one command is outstanding at a time.
type session struct {
	m        *Module
	c        *serialport.Conn
	dlg      *Dialogue
	timeouts int // consecutive
}

// session runs init, then the queries every interval and raw commands in
// between, until the port fails or ctx ends.
func (m *Module) session(ctx context.Context, c *serialport.Conn) error {
	s := &session{m: m, c: c, dlg: NewDialogue(m.urcs)}
	// Raw commands queued while the port was closed were refused already;
	// anything left is for a module that went away.
	for len(m.rawq) > 0 {
		r := <-m.rawq
		m.respond(Reply{Command: r.command}, errors.New("port was reopened"))
	}
	if err := s.start(ctx); err != nil {
		return s.end(ctx, err)
	}
	tick := time.NewTicker(m.every)
	defer tick.Stop()
	for {
		if err := s.queries(ctx); err != nil {
			return s.end(ctx, err)
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case chunk, ok := <-c.Data:
				if !ok {
					return c.Err()
				}
				s.events(s.dlg.Feed(chunk))
			case r := <-m.rawq:
				if err := s.raw(ctx, r.command); err != nil {
					return s.end(ctx, err)
				}
			case <-tick.C:
				waiting = false
			}
		}
	}
}

// raw runs a command published on .../at and answers it. It gets a longer
// timeout than queries, since commissioning commands such as AT+CWJAP take
// seconds, and its timeout does not count towards reset_after: a person
// typing a slow command is no sign of a hung module.
func (s *session) raw(ctx context.Context, cmd string) error {
	reply, err := s.exec(ctx, cmd, s.m.rawTimeout)
	switch {
	case err == nil:
		s.timeouts = 0
		s.m.dev.Status.Set(true)
	case ctx.Err() != nil:
		return nil
	case !errors.Is(err, errTimeout):
		s.m.respond(reply, err)
		return err
	}
	s.m.respond(reply, err)
	return nil
}

// end turns a context error into the nil a Session returns on shutdown.
func (s *session) end(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// start runs init until it gets through without reaching reset_after.
func (s *session) start(ctx context.Context) error {
	for {
		err := s.initialise(ctx)
		if !errors.Is(err, errReset) {
			return err
		}
		if err := s.resetModule(ctx); err != nil {
			return err
		}
	}
}

// initialise sends the init commands; without any, a bare AT checks that the
// module answers. A command answered with ERROR does not stop the rest.
func (s *session) initialise(ctx context.Context) error {
	cmds := s.m.init
	if len(cmds) == 0 {
		cmds = []string{"AT"}
	}
	for _, c := range cmds {
		r, err := s.run(ctx, c, s.m.timeout)
		switch {
		case errors.Is(err, errReset):
			return err
		case errors.Is(err, errTimeout):
			s.m.log.Debug("init command timed out", "command", c)
		case err != nil:
			return err
		case !r.OK():
			s.m.log.Warn("init command refused", "command", c, "result", r.Result, "lines", r.Lines)
		}
	}
	return nil
}

// recover handles what a command's error asks for: nothing for a timeout
// below reset_after, a reset and init again at reset_after.
func (s *session) recover(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, errReset): // before errTimeout, which it wraps
		if err := s.resetModule(ctx); err != nil {
			return err
		}
		return s.start(ctx)
	case err == nil, errors.Is(err, errTimeout):
		return nil
	}
	return err
}

// queries runs one round of the interval queries.
func (s *session) queries(ctx context.Context) error {
	for _, q := range s.m.queries {
		r, err := s.run(ctx, q.command, q.timeout)
		switch {
		case err == nil && r.OK():
			s.matchQuery(q, r)
		case err == nil:
			s.m.publishBad(q, fmt.Errorf("%s: %s", q.command, r.Result))
		case errors.Is(err, errTimeout), errors.Is(err, errReset):
			s.m.publishBad(q, fmt.Errorf("%s: %w", q.command, errTimeout))
		}
		if err := s.recover(ctx, err); err != nil {
			return err
		}
		if errors.Is(err, errReset) {
			return nil // the round is void; the module was just reset
		}
	}
	return nil
}

// matchQuery publishes the first reply line the query's pattern matches.
func (s *session) matchQuery(q query, r Reply) {
	if q.re == nil {
		return
	}
	for _, line := range r.Lines {
		if fields, ok := framing.MatchOne(q.re, line); ok {
			s.m.publishFields(fields)
			return
		}
	}
	s.m.count(func(st *Stats) { st.Unmatched++ })
	s.m.publishBad(q, fmt.Errorf("%s: reply %q did not match the pattern", q.command, r.Lines))
}

// resetModule marks the module offline, sends the reset command if there is
// one, and starts counting timeouts afresh.
func (s *session) resetModule(ctx context.Context) error {
	s.m.dev.Status.Set(false, "reason", "no answer")
	s.m.count(func(st *Stats) { st.Resets++ })
	s.timeouts = 0
	if s.m.reset == "" {
		s.m.log.Warn("module does not answer; sending init again")
		return nil
	}
	s.m.log.Warn("module does not answer; resetting", "command", s.m.reset)
	// A module that resets may answer OK or nothing before it reboots.
	_, err := s.exec(ctx, s.m.reset, s.m.timeout)
	if errors.Is(err, errTimeout) {
		return nil
	}
	return err
}

// run sends one command and keeps the books: a reply resets the count of
// consecutive timeouts and means the module is online; reaching reset_after
// timeouts turns the timeout into errReset.
func (s *session) run(ctx context.Context, cmd string, timeout time.Duration) (Reply, error) {
	r, err := s.exec(ctx, cmd, timeout)
	switch {
	case err == nil:
		s.timeouts = 0
		s.m.dev.Status.Set(true)
	case errors.Is(err, errTimeout):
		s.timeouts++
		s.m.log.Debug("command timed out", "command", cmd, "consecutive", s.timeouts)
		if s.timeouts >= s.m.resetAfter {
			return r, fmt.Errorf("%w: %w", errReset, err)
		}
	}
	return r, err
}

// exec writes cmd and reads until its final result code, the timeout, a
// port failure or the end of ctx. URCs that arrive meanwhile are handled.
func (s *session) exec(ctx context.Context, cmd string, timeout time.Duration) (Reply, error) {
	s.dlg.Begin(cmd)
	if err := s.m.dev.Write(s.c, []byte(cmd+"\r\n")); err != nil {
		s.dlg.Abort()
		return Reply{Command: cmd}, fmt.Errorf("%s: %w", cmd, err)
	}
	// The command and the wait for its answer are one bounded operation.
	s.m.dev.Busy(cmd)
	defer s.m.dev.Idle()
	s.m.count(func(st *Stats) { st.Commands++ })
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.dlg.Abort()
			return Reply{Command: cmd}, ctx.Err()
		case <-t.C:
			r := s.dlg.Abort()
			s.m.count(func(st *Stats) { st.Timeouts++ })
			return r, fmt.Errorf("%s after %v: %w", cmd, timeout, errTimeout)
		case chunk, ok := <-s.c.Data:
			if !ok {
				s.dlg.Abort()
				return Reply{Command: cmd}, s.c.Err()
			}
			if r := s.events(s.dlg.Feed(chunk)); r != nil {
				s.m.count(func(st *Stats) {
					if r.OK() {
						st.Replies++
					} else {
						st.Errors++
					}
				})
				return *r, nil
			}
		}
	}
}

// events publishes URCs, counts strays and returns a completed reply.
func (s *session) events(evs []Event) *Reply {
	var reply *Reply
	for _, ev := range evs {
		switch {
		case ev.Reply != nil:
			reply = ev.Reply
		case ev.URC >= 0:
			s.m.count(func(st *Stats) { st.URCs++ })
			if fields, ok := framing.MatchOne(s.m.urcs[ev.URC], ev.Line); ok {
				s.m.publishFields(fields)
			}
		default:
			s.m.count(func(st *Stats) { st.Stray++ })
			s.m.log.Debug("stray line", "line", ev.Line)
		}
	}
	return reply
}
