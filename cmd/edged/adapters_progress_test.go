package main

import (
	"github.com/edged/edged/adapters/at"
	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/adapters/serialline"
	"github.com/edged/edged/bridge"
	"github.com/edged/edged/broker"
	"github.com/edged/edged/buffer"
)

// Every part tells the watchdog whether its loops make progress; a part
// that stops implementing staller would silently drop out of the check.
var _ = []staller{(*modbus.Bus)(nil), (*serialline.Device)(nil), (*at.Module)(nil),
	(*bridge.Bridge)(nil), (*broker.Broker)(nil), (*buffer.Buffer)(nil)}
