package testpeer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestMatches(t *testing.T) {
	cases := []struct {
		name          string
		filter, topic string
		want          bool
	}{
		{"a filter without wildcards matches only the same topic", "gw/a/set", "gw/a/set", true},
		{"a filter without wildcards does not match a longer topic", "gw/a", "gw/a/set", false},
		{"a filter without wildcards does not match a shorter topic", "gw/a/set", "gw/a", false},
		{"plus matches one level", "gw/+/set", "gw/a/set", true},
		{"plus does not match two levels", "gw/+/set", "gw/a/b/set", false},
		{"plus matches an empty level", "gw/+/set", "gw//set", true},
		{"hash matches every level below", "gw/#", "gw/a/b/c", true},
		{"hash matches its parent level too", "gw/#", "gw", true},
		{"hash alone matches everything", "#", "gw/a", true},
		{"hash not at the end matches nothing", "gw/#/a", "gw/x/a", false},
		{"a wildcard at the start does not match a $ topic", "#", "$SYS/x", false},
		{"plus at the start does not match a $ topic", "+/x", "$SYS/x", false},
		{"a $ topic is matched by its own name", "$SYS/x", "$SYS/x", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(tc.filter, tc.topic); got != tc.want {
				t.Errorf("matches(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	t.Run("publishes are kept in order with their flags", func(t *testing.T) {
		r := NewRecorder()
		buf := []byte("one")
		r.Publish("a", buf, 1, true)
		copy(buf, "xxx") // the adapter may reuse its buffer
		r.Publish("b", []byte("two"), 0, false)
		r.Publish("a", []byte("three"), 0, false)
		if got := r.On("a"); !slices.Equal(got, []string{"one", "three"}) {
			t.Errorf("On(a) = %q", got)
		}
		if got := r.Last("a"); got != "three" {
			t.Errorf("Last(a) = %q", got)
		}
		if got := r.Last("none"); got != "" {
			t.Errorf("Last(none) = %q", got)
		}
		want := []Message{{"a", "one", 1, true}, {"b", "two", 0, false}, {"a", "three", 0, false}}
		if got := r.Messages(); !slices.Equal(got, want) {
			t.Errorf("Messages() = %+v", got)
		}
	})
	t.Run("a publish does not reach subscribers", func(t *testing.T) {
		r := NewRecorder()
		heard := 0
		r.Subscribe("a", func(string, []byte, bool) { heard++ })
		r.Publish("a", []byte("x"), 0, false)
		if heard != 0 {
			t.Errorf("a subscriber heard a publish %d times", heard)
		}
	})
	t.Run("a delivery reaches every matching subscription and only those", func(t *testing.T) {
		r := NewRecorder()
		var got []string
		r.Subscribe("gw/+/set", func(topic string, p []byte, retained bool) {
			got = append(got, fmt.Sprint("plus ", topic, " ", string(p), " ", retained))
		})
		r.Subscribe("gw/a/set", func(topic string, p []byte, _ bool) { got = append(got, "exact "+topic+" "+string(p)) })
		r.Subscribe("gw/b/set", func(string, []byte, bool) { got = append(got, "wrong") })
		if !r.Deliver("gw/a/set", []byte("1")) {
			t.Error("Deliver reported no subscriber")
		}
		if want := []string{"plus gw/a/set 1 false", "exact gw/a/set 1"}; !slices.Equal(got, want) {
			t.Errorf("handlers saw %q, want %q", got, want)
		}
		if r.Deliver("gw/a/other", []byte("1")) {
			t.Error("Deliver reported a subscriber for an unmatched topic")
		}
	})
	t.Run("unsubscribing removes that subscription only, once", func(t *testing.T) {
		r := NewRecorder()
		un1, _ := r.Subscribe("a", func(string, []byte, bool) {})
		r.Subscribe("a", func(string, []byte, bool) {})
		un1()
		un1()
		if got := r.Filters(); !slices.Equal(got, []string{"a"}) {
			t.Errorf("Filters() = %q, want one subscription to a left", got)
		}
		if !r.Subscribed("a") || r.Subscribed("b") {
			t.Error("Subscribed disagrees with Filters")
		}
	})
	t.Run("a retained message is handed to a matching subscriber, marked retained, before Subscribe returns", func(t *testing.T) {
		r := NewRecorder()
		r.Retain("gw/a/tx", []byte("old"))
		r.Retain("gw/a/tx", []byte("newer"))
		r.Retain("gw/b/tx", []byte("other"))
		var got []string
		r.Subscribe("gw/a/tx", func(topic string, p []byte, retained bool) {
			got = append(got, fmt.Sprint(topic, " ", string(p), " ", retained))
		})
		if want := []string{"gw/a/tx newer true"}; !slices.Equal(got, want) {
			t.Errorf("subscriber saw %q, want %q", got, want)
		}
	})
	t.Run("inject waits for a subscriber", func(t *testing.T) {
		r := NewRecorder()
		got := make(chan string, 1)
		go r.Subscribe("a", func(_ string, p []byte, _ bool) { got <- string(p) })
		r.Inject(t, "a", []byte("hello"))
		if p := <-got; p != "hello" {
			t.Errorf("delivered %q", p)
		}
	})
}

func TestGo(t *testing.T) {
	t.Run("stop ends the context and returns what run returned", func(t *testing.T) {
		stop := Go(t, func(ctx context.Context) error { <-ctx.Done(); return nil })
		if err := stop(); err != nil {
			t.Errorf("stop() = %v", err)
		}
		if err := stop(); err != nil {
			t.Errorf("second stop() = %v", err)
		}
	})
	t.Run("stop reports an error from run", func(t *testing.T) {
		stop := Go(t, func(ctx context.Context) error { <-ctx.Done(); return errors.New("boom") })
		if err := stop(); err == nil {
			t.Error("stop() = nil, want the error")
		}
	})
}
