package at

import (
	"reflect"
	"regexp"
	"testing"
)

type step struct {
	begin string   // command to begin before feeding, if any
	feed  []string // chunks
}

func TestDialogue(t *testing.T) {
	urcs := []*regexp.Regexp{regexp.MustCompile(`^\+CREG: (?P<stat>\d)$`), regexp.MustCompile(`^WIFI (DIS)?CONNECT`)}
	cases := []struct {
		name    string
		steps   []step
		replies []Reply
		urcs    []string
		strays  []string
	}{
		{
			name:    "an echoed command's reply leaves the echo out",
			steps:   []step{{"AT+GMR", []string{"AT+GMR\r\r\nAT version:1.7\r\nSDK:3.0\r\n\r\nOK\r\n"}}},
			replies: []Reply{{"AT+GMR", []string{"AT version:1.7", "SDK:3.0"}, "OK"}},
		},
		{
			name:    "a reply without echo works the same",
			steps:   []step{{"AT+CSQ", []string{"\r\n+CSQ: 21,99\r\n\r\nOK\r\n"}}},
			replies: []Reply{{"AT+CSQ", []string{"+CSQ: 21,99"}, "OK"}},
		},
		{
			name:    "a reply in chunks split mid-line comes out whole",
			steps:   []step{{"AT+CSQ", []string{"AT+C", "SQ\r", "\r\n+CS", "Q: 2", "1,99\r\n\r", "\nO", "K\r", "\n"}}},
			replies: []Reply{{"AT+CSQ", []string{"+CSQ: 21,99"}, "OK"}},
		},
		{
			name:    "a URC between command and final result code stays out of the reply",
			steps:   []step{{"AT+CSQ", []string{"AT+CSQ\r\r\n+CSQ: 9,99\r\n+CREG: 1\r\nWIFI CONNECTED\r\nOK\r\n"}}},
			replies: []Reply{{"AT+CSQ", []string{"+CSQ: 9,99"}, "OK"}},
			urcs:    []string{"+CREG: 1", "WIFI CONNECTED"},
		},
		{
			name:    "a URC before the echo does not make the echo a reply line",
			steps:   []step{{"AT", []string{"+CREG: 5\r\nAT\r\r\nOK\r\n"}}},
			replies: []Reply{{"AT", nil, "OK"}},
			urcs:    []string{"+CREG: 5"},
		},
		{
			name:    "ERROR ends a reply",
			steps:   []step{{"AT+FOO", []string{"AT+FOO\r\r\nERROR\r\n"}}},
			replies: []Reply{{"AT+FOO", nil, "ERROR"}},
		},
		{
			name:    "+CME ERROR ends a reply with its number",
			steps:   []step{{"AT+CPIN?", []string{"\r\n+CME ERROR: 10\r\n"}}},
			replies: []Reply{{"AT+CPIN?", nil, "+CME ERROR: 10"}},
		},
		{
			name:    "+CMS ERROR, FAIL and SEND FAIL end replies",
			steps:   []step{{"AT+CMGS", []string{"+CMS ERROR: 500\r\n"}}, {"AT+CWJAP", []string{"FAIL\r\n"}}, {"AT+CIPSEND", []string{"SEND FAIL\r\n"}}},
			replies: []Reply{{"AT+CMGS", nil, "+CMS ERROR: 500"}, {"AT+CWJAP", nil, "FAIL"}, {"AT+CIPSEND", nil, "SEND FAIL"}},
		},
		{
			name:   "output while no command waits is a URC or a stray",
			steps:  []step{{"", []string{"ready\r\n+CREG: 2\r\nOK\r\n"}}},
			urcs:   []string{"+CREG: 2"},
			strays: []string{"ready", "OK"},
		},
		{
			name:    "invalid UTF-8 in a reply line does not break the reply",
			steps:   []step{{"AT+X", []string{"\xff\xfe\r\nOK\r\n"}}},
			replies: []Reply{{"AT+X", []string{"\uFFFD"}, "OK"}},
		},
		{
			name:    "two commands one after the other get their own replies",
			steps:   []step{{"ATE0", []string{"ATE0\r\r\nOK\r\n"}}, {"AT+CSQ", []string{"\r\n+CSQ: 1,2\r\n\r\nOK\r\n"}}},
			replies: []Reply{{"ATE0", nil, "OK"}, {"AT+CSQ", []string{"+CSQ: 1,2"}, "OK"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDialogue(urcs)
			var replies []Reply
			var gotURCs, strays []string
			for _, st := range tc.steps {
				if st.begin != "" {
					d.Begin(st.begin)
				}
				for _, c := range st.feed {
					for _, ev := range d.Feed([]byte(c)) {
						switch {
						case ev.Reply != nil:
							replies = append(replies, *ev.Reply)
						case ev.URC >= 0:
							gotURCs = append(gotURCs, ev.Line)
						default:
							strays = append(strays, ev.Line)
						}
					}
				}
			}
			if !reflect.DeepEqual(replies, tc.replies) {
				t.Errorf("replies = %#v\nwant %#v", replies, tc.replies)
			}
			if !reflect.DeepEqual(gotURCs, tc.urcs) {
				t.Errorf("urcs = %q, want %q", gotURCs, tc.urcs)
			}
			if !reflect.DeepEqual(strays, tc.strays) {
				t.Errorf("strays = %q, want %q", strays, tc.strays)
			}
			if d.Pending() {
				t.Error("still pending after the final result code")
			}
		})
	}
}

func TestDialogueAbortMakesLateLinesStrays(t *testing.T) {
	d := NewDialogue(nil)
	d.Begin("AT+SLOW")
	d.Feed([]byte("+SLOW: 1\r\n"))
	if p := d.Abort(); !reflect.DeepEqual(p.Lines, []string{"+SLOW: 1"}) {
		t.Errorf("partial reply = %q", p.Lines)
	}
	evs := d.Feed([]byte("OK\r\n"))
	if len(evs) != 1 || !evs[0].Stray() {
		t.Errorf("late OK = %+v, want one stray", evs)
	}
}

func TestDialogueBoundsAReplyThatNeverEnds(t *testing.T) {
	d := NewDialogue(nil)
	d.Begin("AT+FLOOD")
	for range 10 * maxReplyLines {
		d.Feed([]byte("line\r\n"))
	}
	if n := len(d.Abort().Lines); n != maxReplyLines {
		t.Errorf("kept %d lines, want %d", n, maxReplyLines)
	}
}
