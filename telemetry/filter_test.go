package telemetry

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		name, filter, topic string
		want                bool
	}{
		{"an exact filter matches its topic", "a/b/c", "a/b/c", true},
		{"an exact filter does not match a longer topic", "a/b", "a/b/c", false},
		{"an exact filter does not match a shorter topic", "a/b/c", "a/b", false},
		{"plus matches one level", "a/+/c", "a/x/c", true},
		{"plus matches an empty level", "a/+/c", "a//c", true},
		{"plus does not match two levels", "a/+", "a/b/c", false},
		{"plus needs a level to be there", "a/+", "a", false},
		{"hash matches everything below", "a/#", "a/b/c/d", true},
		{"hash matches the parent level too", "a/#", "a", true},
		{"hash alone matches any topic", "#", "x/y", true},
		{"wildcards at the first level skip dollar topics", "#", "$SYS/broker", false},
		{"plus at the first level skips dollar topics", "+/broker", "$SYS/broker", false},
		{"a dollar filter matches dollar topics", "$SYS/#", "$SYS/broker", true},
		{"a trailing slash is a level of its own", "a/b", "a/b/", false},
		{"a level is compared whole", "a/bc", "a/b", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ParseFilter(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(c.topic); got != c.want {
				t.Errorf("%q.Match(%q) = %v, want %v", c.filter, c.topic, got, c.want)
			}
		})
	}
}

func TestParseFilterRefusesMalformedFilters(t *testing.T) {
	for _, f := range []string{"", "a/#/b", "a/b#", "a/+b", "a\x00b"} {
		t.Run(strings.ReplaceAll(f, "\x00", `\0`), func(t *testing.T) {
			if _, err := ParseFilter(f); err == nil {
				t.Errorf("ParseFilter(%q) accepted it", f)
			}
		})
	}
}

// FuzzMatch checks the allocation-free matcher against a plain
// split-and-compare version.
func FuzzMatch(f *testing.F) {
	f.Add("a/+/c", "a/b/c")
	f.Add("a/#", "a")
	f.Add("#", "$SYS/x")
	f.Add("+/+", "/")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		fl, err := ParseFilter(filter)
		if err != nil {
			return
		}
		if got, want := fl.Match(topic), slowMatch(fl, topic); got != want {
			t.Errorf("%q.Match(%q) = %v, want %v", filter, topic, got, want)
		}
	})
}

func slowMatch(filter Filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (filter[0] == "+" || filter[0] == "#") {
		return false
	}
	tl := strings.Split(topic, "/")
	for i, f := range filter {
		if f == "#" {
			return true
		}
		if i >= len(tl) || (f != "+" && f != tl[i]) {
			return false
		}
	}
	return len(tl) == len(filter)
}
