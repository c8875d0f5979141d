package framing

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzFramer feeds each input whole and in two halves, as a partial read
// would deliver it, and checks both give the same frames, none longer than
// the maximum and, for lines, none holding a line end.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("T=21.5,H=40\r\nT=22,H=41\n"), uint8(0), 0)
	f.Add([]byte("\x02abc\x03\x02de\x02f\x03"), uint8(1), 3)
	f.Add([]byte("a##b#c##"), uint8(2), 5)
	f.Add([]byte("$GPGGA,1*47\r\n$GP"), uint8(3), 7)
	f.Add([]byte("\xff\xfe\xfd\n\r\x00\n"), uint8(0), 1)
	f.Add(bytes.Repeat([]byte("y"), 100), uint8(0), 10)
	specs := []FrameSpec{
		{},
		{Start: []byte{2}, End: []byte{3}},
		{Delimiter: []byte("##")},
		{Start: []byte("$")},
	}
	f.Fuzz(func(t *testing.T, in []byte, which uint8, cut int) {
		spec := specs[int(which)%len(specs)]
		spec.Max = 8
		collect := func(parts ...[]byte) []string {
			fr, err := NewFramer(spec)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range parts {
				fr.Feed(p, func(b []byte) {
					if len(b) == 0 || len(b) > spec.Max {
						t.Fatalf("frame of %d bytes (max %d)", len(b), spec.Max)
					}
					if len(spec.Delimiter) == 0 && len(spec.End) == 0 && bytes.ContainsAny(b, "\r\n") {
						t.Fatalf("line frame %q holds a line end", b)
					}
					out = append(out, string(b))
				})
			}
			return out
		}
		if cut < 0 {
			cut = -(cut + 1)
		}
		cut %= len(in) + 1
		whole := collect(in)
		halves := collect(in[:cut], in[cut:])
		if !slices.Equal(whole, halves) {
			t.Fatalf("split at %d changed frames: %q vs %q", cut, whole, halves)
		}
	})
}
