package config

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Error is one problem in a config or profile file: where it is and what is
// wrong. Line is 0 when the problem has no place in the file (a file that
// cannot be read, a key that is missing from an absent table).
type Error struct {
	File string // the path as the caller gave it
	Line int    // 1-based; 0 when unknown
	Path string // key path such as modbus[0].device[1].points[3].type
	Msg  string

	err error // the underlying error, when there is one (for errors.Is)
}

// Error prints file:line: path: message, leaving out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the error this one was made from, if any.
func (e *Error) Unwrap() error { return e.err }

// Errors is every problem found in one load, in file and line order.
type Errors struct {
	List []*Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As access to each problem.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, x := range e.List {
		out[i] = x
	}
	return out
}

// sortErrors orders problems by file (the main file first), then line, and
// drops exact duplicates (a profile shared by two devices reports once).
// Problems without a line go after those with one in the same file.
func sortErrors(main string, list []*Error) []*Error {
	rank := func(e *Error) int {
		if e.File == main {
			return 0
		}
		return 1
	}
	line := func(e *Error) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(list, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			strings.Compare(a.File, b.File),
			cmp.Compare(line(a), line(b)),
		)
	})
	out := list[:0]
	seen := make(map[Error]bool, len(list))
	for _, e := range list {
		k := Error{File: e.File, Line: e.Line, Path: e.Path, Msg: e.Msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}
