package mqttauth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/edged/edged/telemetry"
)

// aclAccess is what a rule grants; aclDeny takes everything away.
type aclAccess uint8

const (
	aclRead aclAccess = 1 << iota
	aclWrite
	aclDeny
)

// aclRule is one "topic" or "pattern" line.
type aclRule struct {
	access  aclAccess
	filter  string
	levels  []string // filter split at '/', matched against every topic
	pattern bool     // %u and %c are substituted
	usesU   bool
	usesC   bool
}

// ACL is a Mosquitto ACL file: rules per user, rules for anonymous clients
// (topic lines before the first user line) and pattern rules for everyone.
// It is never modified after LoadACL returns and is safe for concurrent use.
// An ACL with no rules denies everything (unlike Mosquitto before 1.5.3,
// CVE-2018-12550).
type ACL struct {
	anon     []aclRule
	byUser   map[string][]aclRule
	patterns []aclRule
}

// LoadACL reads a Mosquitto ACL file. Recognised lines are
//
//	user NAME
//	topic [read|write|readwrite|deny] FILTER
//	pattern [read|write|readwrite|deny] FILTER    (with %u and %c)
//
// plus blank lines and comments starting with '#'. The access word may be
// left out and means readwrite, as in Mosquitto. Every bad line is reported
// as file:line in one joined error.
func LoadACL(path string) (*ACL, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acl file: %w", err)
	}
	return ParseACL(path, data)
}

// ParseACL is LoadACL on a file already read; name is the file name used
// in errors. The error joins one error per bad line.
func ParseACL(name string, data []byte) (*ACL, error) {
	a := &ACL{byUser: map[string][]aclRule{}}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	n := 0
	user, haveUser := "", false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		keyword, rest := aclCut(line)
		switch keyword {
		case "user":
			if rest == "" {
				errs = append(errs, fmt.Errorf("%s:%d: user line without a user name", name, n))
				continue
			}
			user, haveUser = rest, true
			if _, ok := a.byUser[user]; !ok {
				a.byUser[user] = nil
			}
		case "topic", "pattern":
			r, err := aclParseRule(keyword == "pattern", rest)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %s: %w", name, n, keyword, err))
				continue
			}
			switch {
			case r.pattern:
				a.patterns = append(a.patterns, r)
			case haveUser:
				a.byUser[user] = append(a.byUser[user], r)
			default:
				a.anon = append(a.anon, r)
			}
		default:
			errs = append(errs, fmt.Errorf("%s:%d: unknown keyword %q (want user, topic or pattern)", name, n, aclShort(keyword)))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, n+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// aclCut splits the first space- or tab-separated word from the rest.
func aclCut(s string) (string, string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i+1:])
}

func aclShort(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func aclParseRule(pattern bool, rest string) (aclRule, error) {
	r := aclRule{pattern: pattern, access: aclRead | aclWrite}
	word, filter := aclCut(rest)
	switch word {
	case "read":
		r.access = aclRead
	case "write":
		r.access = aclWrite
	case "readwrite":
	case "deny":
		r.access = aclDeny
	default:
		filter = rest // no access word: the whole rest is the filter
	}
	if filter == "" {
		return r, errors.New("missing topic filter")
	}
	if _, err := telemetry.ParseFilter(filter); err != nil {
		return r, fmt.Errorf("invalid topic filter %q: %v", aclShort(filter), err)
	}
	r.filter = filter
	r.levels = strings.Split(filter, "/")
	if pattern {
		r.usesU = strings.Contains(filter, "%u")
		r.usesC = strings.Contains(filter, "%c")
	}
	return r, nil
}

// aclSafeValue reports whether a client id or user name may be put into a
// pattern. A value holding '+', '#' or '/' would turn into wildcards or extra
// levels and widen the rule (CVE-2017-7650); an empty one expands to nothing
// meaningful.
func aclSafeValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "+#/\x00")
}

// Allowed reports whether the client may publish to topic (write) or
// subscribe to / receive topic (read). For reads topic may be a filter: the
// subscription is allowed when a read rule can match part of what it matches
// and no deny rule covers all of it; every message delivered is checked
// again by its own topic, so a wide subscription only sees what the rules
// allow. Deny wins over any grant. Mosquitto itself grants every
// subscription and filters only on delivery; refusing subscriptions that
// can never receive anything tells the client earlier.
//
// Pattern rules substitute %u (username) and %c (client id). A value with
// '+', '#' or '/' gets no access from patterns that use it, and a deny
// pattern that uses it denies everything, so odd names never widen access.
// An empty user name means an anonymous client: patterns with %u do not
// apply to it.
func (a *ACL) Allowed(clientID, username, topic string, write bool) bool {
	if a == nil || topic == "" {
		return false
	}
	if !write && strings.HasPrefix(topic, "$share/") {
		// A shared subscription is judged by its filter, not its group.
		parts := strings.SplitN(topic, "/", 3)
		if len(parts) != 3 || parts[2] == "" {
			return false
		}
		topic = parts[2]
	}
	var own []aclRule
	if username == "" {
		own = a.anon
	} else {
		own = a.byUser[username]
	}
	want := aclRead
	if write {
		want = aclWrite
	}
	// Split once: every delivery to a subscriber is checked against every
	// rule that applies to it.
	tl := strings.Split(topic, "/")
	granted := false
	check := func(rl []string, access aclAccess) bool { // false: denied outright
		if access == aclDeny {
			return !aclCoversLevels(rl, tl)
		}
		if !granted && access&want != 0 {
			if write {
				granted = aclCoversLevels(rl, tl)
			} else {
				granted = aclIntersectsLevels(rl, tl)
			}
		}
		return true
	}
	for _, r := range own {
		if !check(r.levels, r.access) {
			return false
		}
	}
	for _, r := range a.patterns {
		f, ok := aclExpand(r, clientID, username)
		if !ok {
			if r.access == aclDeny && aclUnsafeFor(r, clientID, username) {
				return false
			}
			continue
		}
		rl := r.levels
		if r.usesU || r.usesC {
			rl = strings.Split(f, "/")
		}
		if !check(rl, r.access) {
			return false
		}
	}
	return granted
}

// aclUnsafeFor reports whether r could not be expanded because a value it
// uses is unsafe (rather than merely empty).
func aclUnsafeFor(r aclRule, clientID, username string) bool {
	return (r.usesU && username != "" && !aclSafeValue(username)) ||
		(r.usesC && clientID != "" && !aclSafeValue(clientID))
}

// aclExpand substitutes %u and %c in a pattern rule, refusing unsafe values.
func aclExpand(r aclRule, clientID, username string) (string, bool) {
	f := r.filter
	if r.usesU {
		if !aclSafeValue(username) {
			return "", false
		}
		f = strings.ReplaceAll(f, "%u", username)
	}
	if r.usesC {
		if !aclSafeValue(clientID) {
			return "", false
		}
		f = strings.ReplaceAll(f, "%c", clientID)
	}
	return f, true
}

// aclDollarMismatch applies MQTT's rule that a filter starting with a
// wildcard does not match topics starting with '$' (such as $SYS). a and b
// are first levels: a string's first character is its first level's.
func aclDollarMismatch(a, b string) bool {
	wild := func(s string) bool { return s != "" && (s[0] == '+' || s[0] == '#') }
	dollar := func(s string) bool { return s != "" && s[0] == '$' }
	return (wild(a) && dollar(b)) || (wild(b) && dollar(a))
}

// aclCovers reports whether every topic matched by filter f (or the topic f
// itself) is matched by rule filter r. It and aclIntersects compare a
// filter with a filter (a subscription with a rule), which a topic matcher
// (telemetry.Filter) does not; the syntax they rely on is ParseFilter's.
func aclCovers(r, f string) bool {
	return aclCoversLevels(strings.Split(r, "/"), strings.Split(f, "/"))
}

// aclCoversLevels is aclCovers on filters split at '/'.
func aclCoversLevels(rl, fl []string) bool {
	if aclDollarMismatch(rl[0], fl[0]) {
		return false
	}
	for i := 0; ; i++ {
		switch {
		case i == len(rl) && i == len(fl):
			return true
		case i == len(rl):
			return false
		case rl[i] == "#":
			return true
		case i == len(fl):
			// "a/#" also matches "a"
			return i == len(rl)-1 && rl[i] == "#"
		case fl[i] == "#":
			return false
		case rl[i] == "+":
			continue
		case fl[i] == "+":
			return false
		case rl[i] != fl[i]:
			return false
		}
	}
}

// aclIntersects reports whether some topic is matched by both filters.
func aclIntersects(r, f string) bool {
	return aclIntersectsLevels(strings.Split(r, "/"), strings.Split(f, "/"))
}

// aclIntersectsLevels is aclIntersects on filters split at '/'.
func aclIntersectsLevels(rl, fl []string) bool {
	if aclDollarMismatch(rl[0], fl[0]) {
		return false
	}
	for i := 0; ; i++ {
		switch {
		case i == len(rl) && i == len(fl):
			return true
		case i == len(rl):
			return i == len(fl)-1 && fl[i] == "#"
		case i == len(fl):
			return i == len(rl)-1 && rl[i] == "#"
		case rl[i] == "#" || fl[i] == "#":
			return true
		case rl[i] == "+" || fl[i] == "+" || rl[i] == fl[i]:
			continue
		default:
			return false
		}
	}
}
