package modbus

import (
	"fmt"
	"strings"
	"testing"
)

func pt(table Table, addr uint16, typ Type) *point {
	return &point{name: fmt.Sprintf("%s%d", table, addr), table: table, addr: addr, typ: typ, bit: -1, scale: 1}
}

func planString(reads []*read) string {
	var s []string
	for _, r := range reads {
		s = append(s, r.String())
	}
	return strings.Join(s, ", ")
}

func TestPlanReads(t *testing.T) {
	cases := []struct {
		name    string
		points  []*point
		gap     int
		regs    int
		bits    int
		want    string
		minimum int
	}{
		{"contiguous registers are one read",
			[]*point{pt(Holding, 0, Uint16), pt(Holding, 1, Float32), pt(Holding, 3, Uint64)},
			10, 125, 2000, "holding registers 0..6", 1},
		{"points out of order are sorted first",
			[]*point{pt(Input, 20, Int16), pt(Input, 0, Float32), pt(Input, 10, Int32)},
			10, 125, 2000, "input registers 0..20", 1},
		{"a gap wider than max_gap starts a new read",
			[]*point{pt(Holding, 0, Uint16), pt(Holding, 12, Uint16)},
			10, 125, 2000, "holding registers 0..0, holding registers 12..12", 2},
		{"a gap of exactly max_gap is bridged",
			[]*point{pt(Holding, 0, Uint16), pt(Holding, 11, Uint16)},
			10, 125, 2000, "holding registers 0..11", 1},
		{"max_gap 0 merges only touching registers",
			[]*point{pt(Holding, 0, Uint16), pt(Holding, 1, Uint16), pt(Holding, 3, Uint16)},
			0, 125, 2000, "holding registers 0..1, holding registers 3..3", 2},
		{"a read never exceeds max_registers",
			[]*point{pt(Holding, 0, Uint16), pt(Holding, 122, Uint64)},
			200, 125, 2000, "holding registers 0..0, holding registers 122..125", 2},
		{"a bool bit shares the read of its register",
			[]*point{{name: "b", table: Holding, addr: 5, typ: Bool, bit: 3, scale: 1}, pt(Holding, 5, Uint16)},
			10, 125, 2000, "holding registers 5..5", 1},
		{"tables are never mixed",
			[]*point{pt(Holding, 0, Uint16), pt(Input, 0, Uint16), pt(Coil, 0, Bool), pt(Discrete, 0, Bool)},
			10, 125, 2000, "holding registers 0..0, input registers 0..0, coils 0..0, discrete inputs 0..0", 4},
		{"coils use max_bits",
			[]*point{pt(Coil, 0, Bool), pt(Coil, 1999, Bool), pt(Coil, 2000, Bool)},
			5000, 125, 2000, "coils 0..1999, coils 2000..2000", 2},
		{"no points plan no reads", nil, 10, 125, 2000, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := planReads(c.points, c.gap, c.regs, c.bits)
			if s := planString(got); s != c.want {
				t.Fatalf("plan %q, want %q", s, c.want)
			}
			n := 0
			for _, r := range got {
				n += len(r.points)
			}
			if n != len(c.points) {
				t.Fatalf("plan covers %d points, want %d", n, len(c.points))
			}
		})
	}
}

func TestSplitCutsAtTheWidestHole(t *testing.T) {
	r := planReads([]*point{pt(Holding, 0, Uint16), pt(Holding, 1, Uint16), pt(Holding, 9, Uint16), pt(Holding, 10, Uint32)}, 10, 125, 2000)[0]
	parts := r.split()
	if s := planString(parts); s != "holding registers 0..1, holding registers 9..11" {
		t.Fatalf("split into %q", s)
	}
	one := &read{table: Holding, start: 0, count: 1, points: []*point{pt(Holding, 0, Uint16)}}
	if one.split() != nil {
		t.Fatal("a single-point read cannot be split")
	}
}

func TestSplitRepeatedlyEndsAtSinglePoints(t *testing.T) {
	var ps []*point
	for a := uint16(0); a < 16; a += 2 {
		ps = append(ps, pt(Holding, a, Uint16))
	}
	reads := planReads(ps, 10, 125, 2000)
	for i := 0; i < len(reads); {
		if parts := reads[i].split(); parts != nil {
			reads = replaceRead(reads, i, parts)
			continue
		}
		i++
	}
	if len(reads) != len(ps) {
		t.Fatalf("after splitting everything: %s", planString(reads))
	}
	for i, r := range reads {
		if r.start != ps[i].addr || r.count != 1 {
			t.Fatalf("read %d is %s", i, r)
		}
	}
}

func TestAReadNamesItsTableAsTheProtocolDoes(t *testing.T) {
	for table, want := range map[Table]string{
		Holding: "holding registers 0..1", Input: "input registers 0..1", Coil: "coils 0..1", Discrete: "discrete inputs 0..1",
	} {
		if got := (&read{table: table, start: 0, count: 2}).String(); got != want {
			t.Errorf("%s read is %q, want %q", table, got, want)
		}
	}
}
