package at

import (
	"reflect"
	"regexp"
	"testing"
)

// FuzzDialogue feeds module output whole and in two halves, as partial reads
// deliver it, and checks that both give the same events and that no reply
// holds a final result code or a URC among its lines.
func FuzzDialogue(f *testing.F) {
	f.Add("AT+CSQ", []byte("AT+CSQ\r\r\n+CSQ: 21,99\r\n+CREG: 1\r\n\r\nOK\r\n"), 9)
	f.Add("AT+CPIN?", []byte("\r\n+CME ERROR: 10\r\n"), 3)
	f.Add("ATE0", []byte("ATE0\rOK\r"), 5)
	f.Add("AT", []byte("\xff\x00\r\n\n\rERROR\n+CMS ERROR: 1\r\n"), 2)
	f.Add("AT+CIPSEND=4", []byte("> \r\nSEND OK\r\nWIFI DISCONNECT\r\n"), 4)
	urcs := []*regexp.Regexp{regexp.MustCompile(`^\+CREG: `), regexp.MustCompile(`^WIFI `)}
	f.Fuzz(func(t *testing.T, cmd string, in []byte, cut int) {
		run := func(parts ...[]byte) []Event {
			d := NewDialogue(urcs)
			d.Begin(cmd)
			var evs []Event
			for _, p := range parts {
				for _, ev := range d.Feed(p) {
					if ev.Reply != nil {
						for _, l := range ev.Reply.Lines {
							if IsFinal(l) {
								t.Fatalf("reply line %q is a final result code", l)
							}
							for _, re := range urcs {
								if re.MatchString(l) {
									t.Fatalf("reply line %q is a URC", l)
								}
							}
						}
						if !IsFinal(ev.Reply.Result) {
							t.Fatalf("reply ended by %q", ev.Reply.Result)
						}
					}
					evs = append(evs, ev)
				}
			}
			return evs
		}
		if cut < 0 {
			cut = -(cut + 1)
		}
		cut %= len(in) + 1
		whole := run(in)
		halves := run(in[:cut], in[cut:])
		if !reflect.DeepEqual(whole, halves) {
			t.Fatalf("split at %d changed events:\n%+v\n%+v", cut, whole, halves)
		}
	})
}
