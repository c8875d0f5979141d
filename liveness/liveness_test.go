package liveness

import (
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLoops(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := NewSet(c.now)
	poll := s.Loop("modbus bus rs485", 5*time.Second)
	commit := s.Loop("buffer committer", 30*time.Second)

	t.Run("a loop that waits for work is healthy however long it waits", func(t *testing.T) {
		c.t = c.t.Add(time.Hour)
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an operation within its limit is healthy", func(t *testing.T) {
		poll.Busy("read holding 0..9")
		c.t = c.t.Add(5 * time.Second)
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an operation past its limit names the loop and the operation", func(t *testing.T) {
		c.t = c.t.Add(time.Second)
		err := s.Check()
		if err == nil || !strings.Contains(err.Error(), "modbus bus rs485: stuck in read holding 0..9 for 6s") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("finishing the operation makes it healthy again", func(t *testing.T) {
		poll.Idle()
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("every stuck loop is reported", func(t *testing.T) {
		poll.Busy("write coil 0")
		commit.Busy("commit")
		c.t = c.t.Add(time.Minute)
		err := s.Check()
		if err == nil || !strings.Contains(err.Error(), "rs485") || !strings.Contains(err.Error(), "committer") {
			t.Fatalf("err = %v", err)
		}
		s.Remove(poll)
		if err := s.Check(); err == nil || strings.Contains(err.Error(), "rs485") {
			t.Fatalf("after Remove: %v", err)
		}
		commit.Do("commit", func() {})
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkBusyIdle is the cost a loop pays per operation, such as the
// uplink per message it hands to the connection.
func BenchmarkBusyIdle(b *testing.B) {
	l := NewSet(nil).Loop("uplink publisher", time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		l.Busy("handing a publish to the connection")
		l.Idle()
	}
}
