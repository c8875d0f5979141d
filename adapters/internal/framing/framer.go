package framing

import (
	"bytes"
	"errors"
)

// DefaultMaxFrame is the longest frame kept when max_frame is not set.
const DefaultMaxFrame = 4096

// FrameSpec says where frames begin and end in a byte stream.
//
//   - Neither Delimiter, Start nor End: lines. LF, CR or CRLF ends a frame and
//     empty lines are skipped, so sensors that end lines in CR only work too.
//   - Delimiter (or End without Start): the bytes before each delimiter.
//   - Start and End: the bytes between them; bytes outside are noise.
//   - Start alone: from Start to the end of the line (NMEA's `$...\r\n`).
//
// Max is the longest frame kept; 0 means DefaultMaxFrame.
type FrameSpec struct {
	Delimiter []byte
	Start     []byte
	End       []byte
	Max       int
}

// Framer cuts a byte stream into frames. Input may arrive in chunks of any
// size; a frame split across reads comes out whole. A frame longer than Max is
// dropped up to its end and counted, so memory stays bounded by Max whatever
// the device sends. Frames are bytes: invalid UTF-8 passes through untouched.
//
// A Framer is not safe for concurrent use.
type Framer struct {
	spec FrameSpec
	end  []byte // what ends a frame in delimiter and start/end mode

	buf      []byte
	inFrame  bool // start mode: a start marker was seen
	skipping bool // an overlong frame is being dropped up to its end
	window   []byte

	overlong uint64
	noise    uint64
}

// NewFramer checks spec and returns a framer for it.
func NewFramer(spec FrameSpec) (*Framer, error) {
	if spec.Max < 0 {
		return nil, errors.New("max_frame is negative")
	}
	if spec.Max == 0 {
		spec.Max = DefaultMaxFrame
	}
	if len(spec.Delimiter) > 0 && (len(spec.Start) > 0 || len(spec.End) > 0) {
		return nil, errors.New("delimiter and start/end are two ways of framing; set one of them")
	}
	f := &Framer{spec: spec}
	switch {
	case len(spec.Delimiter) > 0:
		f.end = spec.Delimiter
	case len(spec.End) > 0:
		f.end = spec.End
	}
	return f, nil
}

// Overlong is how many frames were longer than Max and dropped.
func (f *Framer) Overlong() uint64 { return f.overlong }

// Noise is how many bytes arrived outside any frame (start/end framing only).
func (f *Framer) Noise() uint64 { return f.noise }

// Feed consumes p and calls emit for every frame it completes. The frame
// slice is only valid during the call.
func (f *Framer) Feed(p []byte, emit func(frame []byte)) {
	for _, c := range p {
		switch {
		case len(f.spec.Start) > 0:
			f.feedStart(c, emit)
		case len(f.end) > 0:
			f.feedDelimited(c, emit)
		default:
			f.feedLine(c, emit)
		}
	}
}

// Reset forgets a partial frame, as after the port was reopened.
func (f *Framer) Reset() {
	f.buf, f.window = f.buf[:0], f.window[:0]
	f.inFrame, f.skipping = false, false
}

func (f *Framer) feedLine(c byte, emit func([]byte)) {
	if c == '\n' || c == '\r' {
		if !f.skipping && len(f.buf) > 0 {
			emit(f.buf)
		}
		f.buf, f.skipping = f.buf[:0], false
		return
	}
	if f.skipping {
		return
	}
	if len(f.buf) >= f.spec.Max {
		f.overlong++
		f.buf, f.skipping = f.buf[:0], true
		return
	}
	f.buf = append(f.buf, c)
}

func (f *Framer) feedDelimited(c byte, emit func([]byte)) {
	if f.skipping {
		// Keep just enough of the tail to see a delimiter arrive.
		if f.pushWindow(c, f.end) {
			f.skipping = false
			f.window = f.window[:0]
		}
		return
	}
	f.buf = append(f.buf, c)
	if bytes.HasSuffix(f.buf, f.end) {
		f.emit(f.buf[:len(f.buf)-len(f.end)], emit)
		f.buf = f.buf[:0]
		return
	}
	// The tail may hold the first bytes of a delimiter, so allow for them.
	if len(f.buf) > f.spec.Max+len(f.end)-1 {
		f.overlong++
		f.window = append(f.window[:0], f.buf[len(f.buf)-(len(f.end)-1):]...)
		f.buf, f.skipping = f.buf[:0], true
	}
}

func (f *Framer) feedStart(c byte, emit func([]byte)) {
	if !f.inFrame {
		// Line ends between line-framed sentences are not noise.
		if len(f.end) > 0 || (c != '\r' && c != '\n') {
			f.noise++
		}
		if f.pushWindow(c, f.spec.Start) {
			// The start marker is not noise.
			for _, b := range f.spec.Start {
				if len(f.end) > 0 || (b != '\r' && b != '\n') {
					f.noise--
				}
			}
			f.inFrame = true
			f.buf, f.window = f.buf[:0], f.window[:0]
		}
		return
	}
	if len(f.end) == 0 {
		if c == '\n' || c == '\r' {
			f.emit(f.buf, emit)
			f.buf, f.inFrame = f.buf[:0], false
			return
		}
	}
	f.buf = append(f.buf, c)
	if len(f.end) > 0 && bytes.HasSuffix(f.buf, f.end) {
		f.emit(f.buf[:len(f.buf)-len(f.end)], emit)
		f.buf, f.inFrame = f.buf[:0], false
		return
	}
	// A new start marker inside a frame means the old one was cut short:
	// resynchronise on the new one instead of gluing two frames together.
	if !bytes.Equal(f.spec.Start, f.end) && bytes.HasSuffix(f.buf, f.spec.Start) {
		f.noise += uint64(len(f.buf) - len(f.spec.Start))
		f.buf = f.buf[:0]
		return
	}
	if len(f.buf) > f.spec.Max+max(len(f.end), len(f.spec.Start))-1 {
		f.overlong++
		f.buf, f.inFrame = f.buf[:0], false
	}
}

// emit hands on a non-empty frame, or counts it when a marker longer than
// the frame's end let it grow past Max.
func (f *Framer) emit(frame []byte, emit func([]byte)) {
	switch {
	case len(frame) == 0:
	case len(frame) > f.spec.Max:
		f.overlong++
	default:
		emit(frame)
	}
}

// pushWindow appends c to a sliding window as long as marker and reports
// whether the window now equals marker.
func (f *Framer) pushWindow(c byte, marker []byte) bool {
	f.window = append(f.window, c)
	if len(f.window) > len(marker) {
		f.window = append(f.window[:0], f.window[len(f.window)-len(marker):]...)
	}
	return bytes.Equal(f.window, marker)
}
