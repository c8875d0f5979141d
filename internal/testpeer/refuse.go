package testpeer

import "testing"

// BadConfig is one way to spoil a valid configuration of type C. Name reads
// as a sentence; it names the subtest.
type BadConfig[C any] struct {
	Name string
	Edit func(*C)
}

// RefusesEach runs one subtest per case, in order: it applies the case's
// Edit to a fresh configuration from valid and fails the subtest when build
// accepts the result (returns a nil error).
func RefusesEach[C any](t *testing.T, valid func() C, build func(C) error, cases []BadConfig[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			cfg := valid()
			tc.Edit(&cfg)
			if build(cfg) == nil {
				t.Error("accepted")
			}
		})
	}
}
