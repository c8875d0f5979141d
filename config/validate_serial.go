package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Unescape decodes the escapes allowed in delimiter, start, end and
// request: \r \n \t \0 (NUL), \xNN (any byte) and \\. Any other escape is
// refused. In a TOML basic string ("...") TOML decodes its own escapes
// first, and there \xNN means a Unicode character, not a byte: write byte
// sequences in a literal string ('\x02') so that they reach Unescape.
func Unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf(`a lone "\" ends the text (write \\ for a backslash)`)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			if r, ok := hexRune(s, i+1, 2); ok {
				out = append(out, byte(r))
				i += 2
				continue
			}
			return nil, fmt.Errorf(`\x must be followed by two hex digits, as in \x02`)
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, fmt.Errorf(`unknown escape "\%c" (use \r, \n, \t, \0, \xNN or \\)`, r)
		}
	}
	return out, nil
}

// escapedBytes checks a key holding escaped bytes. TOML turns "\x82" in a
// basic string into the character U+0082 (two bytes in UTF-8), which is
// almost never what a frame byte meant; such characters are refused with
// the fix.
func (v *validator) escapedBytes(path, s string) []byte {
	for _, r := range s {
		if r >= 0x80 && r <= 0xff {
			v.errorf(path, `contains the character U+%04X: TOML reads "\x%02x" as a character, not a byte; write the value in single quotes ('\x%02x') to mean the byte`, r, r, r)
			return nil
		}
	}
	b, err := Unescape(s)
	if err != nil {
		v.errorf(path, "%v", err)
		return nil
	}
	return b
}

// serialPort checks the line settings shared by [[serial]] and [[at]].
func (v *validator) serialPort(p string, sp *SerialPort) {
	v.required(p+".port", sp.Port, "the serial device, e.g. /dev/ttyAMA0")
	v.lineSettings(p, sp.Baud, sp.Parity, sp.DataBits, sp.StopBits)
}

// pattern compiles a regexp and returns it, or nil after recording why not.
func (v *validator) pattern(path, expr string) *regexp.Regexp {
	re, err := regexp.Compile(expr)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		v.errorf(path, "not a valid regular expression: %s", msg)
		return nil
	}
	return re
}

// groupNames checks the named groups of a pattern, which become point
// names: topic levels that must not clash with edged's own.
func (v *validator) groupNames(path string, re *regexp.Regexp, reserved map[string]string) int {
	n := 0
	for _, name := range re.SubexpNames() {
		if name == "" {
			continue
		}
		n++
		if why, ok := reserved[name]; ok {
			v.errorf(path, "group %q is reserved for %s", name, why)
		}
	}
	return n
}

// maxFrameLimit is the longest frame a serial device may be told to take:
// the frame buffer is allocated at that size.
const maxFrameLimit = 16 << 20

var serialReserved = map[string]string{
	"status": "the device's online/offline topic",
	"raw":    "unmatched frames",
	"tx":     "writing to the port",
}

var atReserved = map[string]string{
	"status": "the device's online/offline topic",
	"at":     "raw AT commands",
}

func (v *validator) serial(list []Serial) {
	for i := range list {
		s := &list[i]
		p := index("serial", i)
		v.deviceName(p, s.Name, "weather")
		v.serialPort(p, &s.SerialPort)

		if s.Delimiter != "" {
			if s.DelimiterBytes = v.escapedBytes(p+".delimiter", s.Delimiter); s.DelimiterBytes != nil && len(s.DelimiterBytes) == 0 {
				v.errorf(p+".delimiter", "must not be empty")
			}
		}
		if (s.Start == "") != (s.End == "") {
			missing := "end"
			if s.Start == "" {
				missing = "start"
			}
			v.errorf(p+"."+missing, "missing (start and end go together: frames run from start to end)")
		}
		if s.Start != "" {
			s.StartBytes = v.escapedBytes(p+".start", s.Start)
		}
		if s.End != "" {
			s.EndBytes = v.escapedBytes(p+".end", s.End)
		}
		if s.Delimiter != "" && (s.Start != "" || s.End != "") {
			v.errorf(p+".delimiter", "use either delimiter or start and end, not both")
		}
		if s.MaxFrame <= 0 || s.MaxFrame > maxFrameLimit {
			v.errorf(p+".max_frame", "must be between 1 byte and 16MiB, got %d", s.MaxFrame)
		}

		if len(s.Patterns) == 0 && !s.Raw {
			v.errorf(p+".patterns", "missing (regular expressions with named groups, or raw = true to publish whole frames)")
		}
		s.Regexps = nil
		for k, expr := range s.Patterns {
			pp := index(p+".patterns", k)
			re := v.pattern(pp, expr)
			if re == nil {
				continue
			}
			s.Regexps = append(s.Regexps, re)
			if v.groupNames(pp, re, serialReserved) == 0 && !s.Raw {
				v.errorf(pp, "has no named group such as (?P<temperature>...): nothing in it would be published")
			}
		}

		if s.Request != "" {
			s.RequestBytes = v.escapedBytes(p+".request", s.Request)
			v.positiveDur(p+".interval", s.Interval)
		} else if s.Interval.Duration != 0 || v.set[p+".interval"] {
			v.errorf(p+".interval", "only used with request (the bytes sent every interval)")
		}
		v.topicAndPayload(p, s.Topic, s.Payload)
		v.haDevice(p+".homeassistant", s.HomeAssistant)
	}
}

func (v *validator) at(list []ATDev) {
	for i := range list {
		a := &list[i]
		p := index("at", i)
		v.deviceName(p, a.Name, "wifi")
		v.serialPort(p, &a.SerialPort)
		for k, cmd := range a.Init {
			v.command(index(p+".init", k), cmd)
		}
		v.positiveDur(p+".interval", a.Interval)
		v.positiveDur(p+".timeout", a.Timeout)
		for k := range a.Queries {
			q := &a.Queries[k]
			qp := index(p+".queries", k)
			v.command(qp+".command", q.Command)
			if q.Pattern != "" {
				q.Regexp = v.atPattern(qp+".pattern", q.Pattern)
			}
			v.positiveDur(qp+".timeout", q.Timeout)
		}
		for k := range a.URCs {
			up := index(p+".urcs", k)
			if v.required(up+".pattern", a.URCs[k].Pattern, "a regular expression matching the unsolicited line") {
				a.URCs[k].Regexp = v.atPattern(up+".pattern", a.URCs[k].Pattern)
			}
		}
		if a.Reset != "" {
			v.command(p+".reset", a.Reset)
		}
		if a.ResetAfter < 1 {
			v.errorf(p+".reset_after", "must be at least 1, got %d", a.ResetAfter)
		}
		v.topicAndPayload(p, a.Topic, a.Payload)
		v.haDevice(p+".homeassistant", a.HomeAssistant)
	}
}

// atPattern checks and compiles the regular expression of a query or an
// unsolicited result code; nil when it is not valid.
func (v *validator) atPattern(path, expr string) *regexp.Regexp {
	re := v.pattern(path, expr)
	if re != nil {
		v.groupNames(path, re, atReserved)
	}
	return re
}

// command checks one AT command line of the config.
func (v *validator) command(path, cmd string) {
	if !v.required(path, cmd, `an AT command such as "AT+GMR"`) {
		return
	}
	if prob := ATCommandProblem(cmd); prob != "" {
		v.errorf(path, "%s", prob)
	}
}

// MaxATCommand is the longest AT command line edged sends, from the config
// or a raw command: AT commands are short single lines.
const MaxATCommand = 256

// ATCommandProblem says why cmd cannot be sent as one AT command line, or
// "" when it can: the rule for the commands of an [[at]] table and for the
// raw commands published to {gateway}/{device}/at. edged ends every command
// with \r\n itself.
func ATCommandProblem(cmd string) string {
	switch {
	case cmd == "":
		return "is empty"
	case strings.ContainsAny(cmd, "\r\n"):
		return `must not contain line breaks (edged ends every command with \r\n)`
	case strings.ContainsRune(cmd, 0):
		return "must not contain a NUL character"
	case len(cmd) > MaxATCommand:
		return fmt.Sprintf("is %d bytes long; an AT command line is at most %d", len(cmd), MaxATCommand)
	}
	return ""
}
