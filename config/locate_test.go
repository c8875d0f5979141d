package config

import (
	"slices"
	"testing"
)

func TestLineIndexFindsEveryKindOfKey(t *testing.T) {
	src := `# a comment with [brackets] and "quotes"
[gateway]
id = "pi-01" # trailing comment

[[modbus]]
name = "a"
  [[modbus.device]]
  name = "d0"
  [[modbus.device]]
  name = "d1"
  points = [
    { name = "v", table = "input",
      type = "float32" },   # TOML 1.1: an inline table over two lines
    # a comment between elements
    { name = "e", "quoted key" = 1, 'literal key' = 2, nested = { deep = [1, [2, 3]] } },
  ]

[[modbus]]
name = "b"
  [[modbus.device]]
  name = """
multi "line"
basic"""
  unit = 1
  desc = '''
literal ''' # ends here
  after = 1
  dotted.key.here = true
  s = "a \" quote, ] bracket and } brace"
  date = 1979-05-27 07:32:00Z

["odd table"]
x = 1
`
	ix := indexLines(src)
	cases := []struct {
		path string
		line int
	}{
		{"gateway", 2},
		{"gateway.id", 3},
		{"modbus[0]", 5},
		{"modbus[0].name", 6},
		{"modbus[0].device[0]", 7},
		{"modbus[0].device[1]", 9},
		{"modbus[0].device[1].name", 10},
		{"modbus[0].device[1].points", 11},
		{"modbus[0].device[1].points[0]", 12},
		{"modbus[0].device[1].points[0].type", 13},
		{"modbus[0].device[1].points[1]", 15},
		{`modbus[0].device[1].points[1]."quoted key"`, 15},
		{`modbus[0].device[1].points[1]."literal key"`, 15},
		{"modbus[0].device[1].points[1].nested.deep[1][0]", 15},
		{"modbus[1]", 18},
		{"modbus[1].device[0]", 20},
		{"modbus[1].device[0].name", 21},
		{"modbus[1].device[0].unit", 24},
		{"modbus[1].device[0].desc", 25},
		{"modbus[1].device[0].after", 27},
		{"modbus[1].device[0].dotted.key.here", 28},
		{"modbus[1].device[0].s", 29},
		{"modbus[1].device[0].date", 30},
		{`"odd table".x`, 33},
		// Keys that are not there are found at their nearest table.
		{"modbus[1].device[0].missing", 20},
		{"modbus[0].device[1].points[0].order", 12},
		{"nowhere.at.all", 0},
	}
	for _, tc := range cases {
		if got := ix.line(tc.path); got != tc.line {
			t.Errorf("line(%s) = %d, want %d", tc.path, got, tc.line)
		}
	}
}

func TestPathParentsUnderstandQuotedKeys(t *testing.T) {
	got := pathParents(`a."b.c[1]".d[2][3].e`)
	want := []string{`a."b.c[1]".d[2][3].e`, `a."b.c[1]".d[2][3]`, `a."b.c[1]".d[2]`, `a."b.c[1]".d`, `a."b.c[1]"`, `a`}
	if !slices.Equal(got, want) {
		t.Errorf("pathParents = %q, want %q", got, want)
	}
}

func TestLinesWithCRLFAndAByteOrderMark(t *testing.T) {
	text := "\ufeff[gateway]\r\nid = \"pi-01\"\r\n\r\n[log]\r\nlevel = \"loud\"\r\n"
	_, err := ParseWith("edged.toml", []byte(text), Options{})
	want := `edged.toml:5: log.level: "loud" is not one of debug, info, warn, error`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}
