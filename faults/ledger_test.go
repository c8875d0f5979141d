package faults

import (
	"reflect"
	"testing"
)

// TestLedgerCountsLossDuplicatesAndOrderPerTopic checks the account the
// suites' verdicts rest on.
func TestLedgerCountsLossDuplicatesAndOrderPerTopic(t *testing.T) {
	l := NewLedger()
	for range 5 {
		l.Next("a")
	}
	l.Next("b")
	for _, seq := range []int{1, 2, 3, 4} {
		l.Acked("a", seq) // 5 was sent, never acknowledged
	}
	l.Acked("b", 1)
	for _, seq := range []int{1, 3, 2, 3, 5} { // 2 after 3: out of order; 3 twice; 4 lost; 5 unacked
		l.Delivered("a", seq)
	}
	l.Delivered("b", 1) // another topic's order is its own
	if l.Missing() != 1 {
		t.Errorf("missing %d, want 1", l.Missing())
	}
	f := l.Figures()
	want := Figures{Published: 6, Acknowledged: 5, Delivered: 4, Lost: 1, Duplicates: 1, OutOfOrder: 1, Unacked: 1}
	f.MaxLag, f.LostSample = 0, nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("figures\n got %+v\nwant %+v", f, want)
	}
	if got := l.FiguresOf("b"); got.Acknowledged != 1 || got.Delivered != 1 || got.OutOfOrder != 0 {
		t.Errorf("topic b alone: %+v", got)
	}
	if s := l.Figures().LostSample; len(s) != 1 || s[0] != "a#4" {
		t.Errorf("lost sample %v, want [a#4]", s)
	}
}
