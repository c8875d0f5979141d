// Package deps holds the test that keeps edged's dependency rules: which of
// edged's own packages each part may import (docs/ARCHITECTURE.md). It has no
// code of its own; a change that breaks a rule fails `make test` here, with
// the rule that was broken.
package deps
