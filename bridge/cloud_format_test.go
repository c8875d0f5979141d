package bridge

import (
	"encoding/json"
	"testing"
)

// FuzzReadingValue feeds local payloads to the reading parser of the cloud
// posts: it never panics, and what it takes as a value is valid JSON (it is
// embedded as is in the post).
func FuzzReadingValue(f *testing.F) {
	for _, s := range []string{`{"value":230.5,"unit":"V","ts":"2026-11-30T10:00:00.123Z"}`, `42`, `true`, `"text"`,
		`online`, `{"quality":"bad","error":"timeout"}`, `{"value":null}`, `{"value":[1,2]}`, ``, `{`, " 7 "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		v, _, ok := readingValue(p)
		if ok && !json.Valid(v) {
			t.Fatalf("%q taken as the value %q, which is not JSON", p, v)
		}
	})
}
