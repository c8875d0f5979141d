package pointstate

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestGoodReadingsFollowTheDeadbandAndHeartbeat(t *testing.T) {
	s := State{Deadband: 0.5, Heartbeat: time.Minute}
	t0 := time.Unix(1_800_000_000, 0)
	steps := []struct {
		at   time.Duration
		v    any
		want bool
		why  string
	}{
		{0, 20.0, true, "the first reading is published"},
		{time.Second, 20.3, false, "a change inside the deadband is held back"},
		{2 * time.Second, 20.6, true, "a change beyond the deadband is published"},
		{3 * time.Second, 20.2, false, "the deadband is measured from the last published value"},
		{63 * time.Second, 20.2, true, "the heartbeat publishes an unchanged value"},
		{64 * time.Second, 20.2, false, "and then waits for the next heartbeat"},
		{65 * time.Second, int64(19), true, "integers are compared as numbers"},
		{66 * time.Second, math.NaN(), true, "NaN after a number is a change"},
		{67 * time.Second, "text", true, "a value that is no number changes when it differs"},
		{68 * time.Second, "text", false, "and is held back when it does not"},
	}
	for _, st := range steps {
		if got := s.Good(st.v, t0.Add(st.at)); got != st.want {
			t.Fatalf("%s: Good = %v, want %v", st.why, got, st.want)
		}
	}
}

func TestWithoutADeadbandEveryReadingIsPublished(t *testing.T) {
	var s State
	now := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if !s.Good(uint64(7), now) {
			t.Fatalf("reading %d held back", i)
		}
	}
}

func TestBadQualityIsPublishedOncePerTransition(t *testing.T) {
	s := State{Deadband: 10}
	now := time.Unix(1_800_000_000, 0)
	s.Good(20.0, now)
	steps := []struct {
		bad           error // nil: a good reading of 20
		publish, news bool
		why           string
	}{
		{errors.New("timeout"), true, false, "a point going bad is published"},
		{errors.New("timeout"), false, false, "a point staying bad is not"},
		{errors.New("port gone"), false, true, "a new reason while bad is news, not a publication"},
		{nil, true, false, "the unchanged value is published when the point comes back"},
		{nil, false, false, "and then the deadband holds again"},
		{errors.New("timeout"), true, false, "going bad a second time is published again"},
	}
	for _, st := range steps {
		if st.bad == nil {
			if got := s.Good(20.0, now); got != st.publish {
				t.Fatalf("%s: Good = %v, want %v", st.why, got, st.publish)
			}
			continue
		}
		if pub, news := s.Bad(st.bad); pub != st.publish || news != st.news {
			t.Fatalf("%s: Bad = %v, %v, want %v, %v", st.why, pub, news, st.publish, st.news)
		}
	}
}

func TestSetPublishesWhateverTheDeadbandSays(t *testing.T) {
	s := State{Deadband: 10}
	now := time.Unix(1_800_000_000, 0)
	s.Good(20.0, now)
	s.Bad(errors.New("timeout"))
	s.Set(21.0, now) // a read-back after a write
	if s.Good(21.0, now) {
		t.Error("a value recorded by Set was published again")
	}
	if pub, _ := s.Bad(errors.New("timeout")); !pub {
		t.Error("Set did not clear the bad state")
	}
}
