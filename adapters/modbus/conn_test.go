package modbus

import (
	"errors"
	"fmt"
	"testing"

	mb "github.com/simonvetter/modbus"
)

func TestClassifyMapsTheClientLibrarysErrors(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		class errClass
		want  error
	}{
		{"no error is ok", nil, classOK, nil},
		{"illegal function is exception 1", mb.ErrIllegalFunction, classException, ExceptionError{1}},
		{"illegal data address is exception 2", fmt.Errorf("read: %w", mb.ErrIllegalDataAddress), classException, ExceptionError{2}},
		{"illegal data value is exception 3", mb.ErrIllegalDataValue, classException, ExceptionError{3}},
		{"server device failure is exception 4", mb.ErrServerDeviceFailure, classException, ExceptionError{4}},
		{"acknowledge is exception 5", mb.ErrAcknowledge, classException, ExceptionError{5}},
		{"server device busy is exception 6", mb.ErrServerDeviceBusy, classException, ExceptionError{6}},
		{"memory parity error is exception 8", mb.ErrMemoryParityError, classException, ExceptionError{8}},
		{"gateway path unavailable is exception 10", mb.ErrGWPathUnavailable, classException, ExceptionError{10}},
		{"gateway target silent is exception 11", mb.ErrGWTargetFailedToRespond, classException, ExceptionError{11}},
		{"a timeout is a timeout", mb.ErrRequestTimedOut, classTimeout, ErrTimeout},
		{"a bad CRC is a bad frame", mb.ErrBadCRC, classFrame, mb.ErrBadCRC},
		{"any other error is the link's", errors.New("broken pipe"), classIO, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			class, err := classify(c.err)
			if class != c.class {
				t.Fatalf("class %d, want %d", class, c.class)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}
