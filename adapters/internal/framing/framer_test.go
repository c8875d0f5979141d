package framing

import (
	"bytes"
	"slices"
	"testing"
)

// frames feeds each chunk in turn and returns the frames as strings.
func frames(t *testing.T, f *Framer, chunks ...string) []string {
	t.Helper()
	var out []string
	for _, c := range chunks {
		f.Feed([]byte(c), func(b []byte) { out = append(out, string(b)) })
	}
	return out
}

func TestFramer(t *testing.T) {
	cases := []struct {
		name     string
		spec     FrameSpec
		chunks   []string
		want     []string
		overlong uint64
		noise    uint64
	}{
		{name: "lines end in LF", chunks: []string{"a=1\nb=2\n"}, want: []string{"a=1", "b=2"}},
		{name: "lines end in CRLF", chunks: []string{"a=1\r\nb=2\r\n"}, want: []string{"a=1", "b=2"}},
		{name: "lines end in CR alone", chunks: []string{"a=1\rb=2\r"}, want: []string{"a=1", "b=2"}},
		{name: "LFCR and blank lines are skipped", chunks: []string{"\n\r\na=1\n\r\n\n"}, want: []string{"a=1"}},
		{name: "a line split across reads comes out whole", chunks: []string{"T=2", "1.5,H", "=40\r", "\nT=22\n"}, want: []string{"T=21.5,H=40", "T=22"}},
		{name: "a partial line waits for its end", chunks: []string{"a=1\nb="}, want: []string{"a=1"}},
		{name: "invalid UTF-8 passes through", chunks: []string{"\xff\xfeT=1\x80\n"}, want: []string{"\xff\xfeT=1\x80"}},
		{
			name: "an overlong line is dropped up to its end and counted", spec: FrameSpec{Max: 4},
			chunks: []string{"abcd\nabcdef", "gh\nok\n"}, want: []string{"abcd", "ok"}, overlong: 1,
		},
		{
			name: "a custom delimiter ends frames", spec: FrameSpec{Delimiter: []byte(";")},
			chunks: []string{"a;b;;c"}, want: []string{"a", "b"},
		},
		{
			name: "a multi-byte delimiter split across reads is found", spec: FrameSpec{Delimiter: []byte("##")},
			chunks: []string{"a\n#", "#b#c#", "#"}, want: []string{"a\n", "b#c"},
		},
		{
			name: "an overlong delimited frame is dropped up to its delimiter", spec: FrameSpec{Delimiter: []byte("##"), Max: 3},
			chunks: []string{"abc##abcdefg#", "#xy##"}, want: []string{"abc", "xy"}, overlong: 1,
		},
		{
			name: "start and end bytes frame a message and noise between is counted", spec: FrameSpec{Start: []byte{2}, End: []byte{3}},
			chunks: []string{"zz\x02one\x03junk\x02tw", "o\x03"}, want: []string{"one", "two"}, noise: 6,
		},
		{
			name: "a second start marker resynchronises", spec: FrameSpec{Start: []byte{2}, End: []byte{3}},
			chunks: []string{"\x02cut\x02whole\x03"}, want: []string{"whole"}, noise: 3,
		},
		{
			name: "an overlong start/end frame is dropped", spec: FrameSpec{Start: []byte("<"), End: []byte(">"), Max: 3},
			chunks: []string{"<abcdef><ok>"}, want: []string{"ok"}, overlong: 1, noise: 3,
		},
		{
			name: "a start marker alone frames to the end of the line", spec: FrameSpec{Start: []byte("$")},
			chunks: []string{"noise\r\n$GPGGA,1,2*4", "7\r\n$GPRMC\n"}, want: []string{"GPGGA,1,2*47", "GPRMC"}, noise: 5,
		},
		{
			name: "an end marker alone acts as a delimiter", spec: FrameSpec{End: []byte("\r\n")},
			chunks: []string{"a\rb\r\n"}, want: []string{"a\rb"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFramer(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := frames(t, f, tc.chunks...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("frames = %q, want %q", got, tc.want)
			}
			if f.Overlong() != tc.overlong {
				t.Errorf("overlong = %d, want %d", f.Overlong(), tc.overlong)
			}
			if f.Noise() != tc.noise {
				t.Errorf("noise = %d, want %d", f.Noise(), tc.noise)
			}
		})
	}
}

func TestFramerRefusesTwoWaysOfFraming(t *testing.T) {
	if _, err := NewFramer(FrameSpec{Delimiter: []byte(";"), End: []byte("\n")}); err == nil {
		t.Fatal("delimiter with end accepted")
	}
}

func TestFramerMemoryStaysBounded(t *testing.T) {
	f, _ := NewFramer(FrameSpec{Max: 64})
	chunk := bytes.Repeat([]byte("x"), 4096)
	for range 256 {
		f.Feed(chunk, func([]byte) { t.Fatal("frame from endless input") })
	}
	if cap(f.buf) > 1024 {
		t.Fatalf("buffer grew to %d bytes for max 64", cap(f.buf))
	}
	if f.Overlong() != 1 {
		t.Fatalf("overlong = %d, want 1", f.Overlong())
	}
}

// BenchmarkFramerLines measures framing throughput on typical sensor lines;
// a 115200-baud UART delivers about 11.5 KB/s, so anything in MB/s is ample.
func BenchmarkFramerLines(b *testing.B) {
	f, _ := NewFramer(FrameSpec{})
	chunk := bytes.Repeat([]byte("T=21.5,H=40.2\r\n"), 64)
	b.SetBytes(int64(len(chunk)))
	n := 0
	for b.Loop() {
		f.Feed(chunk, func([]byte) { n++ })
	}
}
