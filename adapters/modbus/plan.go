package modbus

import (
	"fmt"
	"sort"
)

// read is one request of a device's poll plan: count registers (or bits)
// of one table from start, and the points decoded from the answer.
type read struct {
	table  Table
	start  uint16
	count  uint16
	points []*point
}

func (r *read) String() string {
	return fmt.Sprintf("%s %d..%d", r.table.plural(), r.start, int(r.start)+int(r.count)-1)
}

// planReads coalesces the points of one device into as few reads as
// possible: per table, points are sorted by address and merged while the
// hole between them is at most maxGap and the read stays within maxRegs
// registers (maxBits for coils and discrete inputs). Overlapping points
// (a bool bit and the register it lives in) share a read.
func planReads(points []*point, maxGap, maxRegs, maxBits int) []*read {
	byTable := map[Table][]*point{}
	for _, p := range points {
		byTable[p.table] = append(byTable[p.table], p)
	}
	var reads []*read
	for _, t := range []Table{Holding, Input, Coil, Discrete} {
		ps := byTable[t]
		if len(ps) == 0 {
			continue
		}
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].addr < ps[j].addr })
		limit := maxRegs
		if t.isBits() {
			limit = maxBits
		}
		reads = append(reads, coalesce(t, ps, maxGap, limit)...)
	}
	return reads
}

// coalesce merges address-sorted points of one table into reads.
func coalesce(t Table, ps []*point, maxGap, limit int) []*read {
	var reads []*read
	var cur *read
	end := 0 // one past the last register of cur
	for _, p := range ps {
		pStart, pEnd := int(p.addr), int(p.addr)+p.span()
		if cur != nil && pStart-end <= maxGap && max(end, pEnd)-int(cur.start) <= limit {
			cur.points = append(cur.points, p)
			end = max(end, pEnd)
			cur.count = uint16(end - int(cur.start))
			continue
		}
		cur = &read{table: t, start: p.addr, count: uint16(p.span()), points: []*point{p}}
		end = pEnd
		reads = append(reads, cur)
	}
	return reads
}

// split divides a merged read that the device refused (Illegal Data
// Address) in two at the widest hole between its points, so a map with
// gaps converges on reads the device accepts in a few cycles. A read of a
// single point cannot be split and returns nil.
func (r *read) split() []*read {
	if len(r.points) < 2 {
		return nil
	}
	// Points are address-sorted; cut after the point followed by the widest gap.
	cut, widest := len(r.points)/2, -1<<31
	end := 0
	for i, p := range r.points[:len(r.points)-1] {
		end = max(end, int(p.addr)+p.span())
		gap := int(r.points[i+1].addr) - end
		if gap > widest || (gap == widest && abs(i+1-len(r.points)/2) < abs(cut-len(r.points)/2)) {
			cut, widest = i+1, gap
		}
	}
	return append(spanRead(r.table, r.points[:cut]), spanRead(r.table, r.points[cut:])...)
}

// spanRead is one read covering all the given address-sorted points.
func spanRead(t Table, ps []*point) []*read {
	end := 0
	for _, p := range ps {
		end = max(end, int(p.addr)+p.span())
	}
	return []*read{{table: t, start: ps[0].addr, count: uint16(end - int(ps[0].addr)), points: ps}}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// replaceRead swaps reads[i] for the reads in with, keeping order.
func replaceRead(reads []*read, i int, with []*read) []*read {
	out := make([]*read, 0, len(reads)-1+len(with))
	out = append(out, reads[:i]...)
	out = append(out, with...)
	return append(out, reads[i+1:]...)
}
