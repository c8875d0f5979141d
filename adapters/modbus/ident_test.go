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
