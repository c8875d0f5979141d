package modbus

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestCRC16MatchesAPublishedFrame(t *testing.T) {
	// The PZEM-004T V3.0 manual's read of ten input registers from unit 1.
	frame := []byte{0x01, 0x04, 0x00, 0x00, 0x00, 0x0A}
	if got := binary.LittleEndian.AppendUint16(nil, crc16(frame)); got[0] != 0x70 || got[1] != 0x0D {
		t.Fatalf("CRC % x, want 70 0d", got)
	}
}

func TestParseIdent(t *testing.T) {
	ok := []byte{0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03,
		0x00, 0x07, 'E', 'a', 's', 't', 'r', 'o', 'n',
		0x01, 0x06, 'S', 'D', 'M', '1', '2', '0',
		0x02, 0x03, '1', '.', '0'}
	id, err := parseIdent(ok)
	if err != nil || id.String() != "Eastron SDM120 1.0" {
		t.Fatalf("got %q, %v", id, err)
	}
	var ex ExceptionError
	if _, err := parseIdent([]byte{0xAB, 0x01}); !errors.As(err, &ex) || ex.Code != 1 {
		t.Fatalf("exception answer: %v", err)
	}
	for i := range len(ok) - 1 {
		if _, err := parseIdent(ok[:i]); err == nil && i < 7 {
			t.Errorf("a %d-byte answer parsed", i)
		}
	}
}

// FuzzParseIdent feeds arbitrary answers: none may panic.
func FuzzParseIdent(f *testing.F) {
	f.Add([]byte{0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x02, 'h', 'i'})
	f.Add([]byte{0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0xFF, 0x00, 0xFF})
	f.Add([]byte{0xAB, 0x02})
	f.Fuzz(func(t *testing.T, pdu []byte) { _, _ = parseIdent(pdu) })
}

// wire is a device that answers with fixed bytes, in chunks of at most
// chunk bytes, and swallows what it is sent.
type wire struct {
	answer []byte
	chunk  int
}

func (w *wire) Write(b []byte) (int, error) { return len(b), nil }
func (w *wire) Read(b []byte) (int, error) {
	if len(w.answer) == 0 {
		return 0, ErrTimeout
	}
	n := copy(b[:min(len(b), w.chunk)], w.answer)
	w.answer = w.answer[n:]
	return n, nil
}

func TestRTUIdentAnswerIsReadWhateverItsChunks(t *testing.T) {
	body := []byte{0x05, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x02, 'h', 'i'}
	frame := binary.LittleEndian.AppendUint16(append([]byte(nil), body...), crc16(body))
	for _, chunk := range []int{1, 2, 5, 64} {
		pdu, err := rtuExchange(&wire{answer: append([]byte(nil), frame...), chunk: chunk}, 5, []byte{0x2B, 0x0E, 0x01, 0x00})
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if id, err := parseIdent(pdu); err != nil || id.Vendor != "hi" {
			t.Fatalf("chunks of %d: %+v, %v", chunk, id, err)
		}
	}
	frame[len(frame)-1] ^= 0xFF
	if _, err := rtuExchange(&wire{answer: frame, chunk: 64}, 5, nil); err == nil || err.Error() != "bad response: CRC" {
		t.Fatalf("a bad CRC: %v", err)
	}
}

// FuzzRTUIdentAnswer feeds arbitrary answers, in two halves as a serial
// line delivers them: none may panic or read past an RTU frame.
func FuzzRTUIdentAnswer(f *testing.F) {
	body := []byte{0x01, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x02, 'h', 'i'}
	f.Add(binary.LittleEndian.AppendUint16(body, crc16(body)), 3)
	f.Add([]byte{0x01, 0xAB, 0x01, 0x00, 0x00}, 2)
	f.Add([]byte{0x01, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0xFF, 0x00, 0xFF}, 1)
	f.Fuzz(func(t *testing.T, answer []byte, chunk int) {
		chunk = max(1, min(chunk, len(answer)/2+1))
		_, _ = rtuExchange(&wire{answer: answer, chunk: chunk}, 1, []byte{0x2B, 0x0E, 0x01, 0x00})
	})
}
