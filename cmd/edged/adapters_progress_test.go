package main

import (
	"github.com/edged/edged/adapters/at"
	"github.com/edged/edged/adapters/modbus"
	"github.com/edged/edged/adapters/serialline"
)

// Every adapter tells the watchdog whether its loops make progress; a part
// that stops implementing staller would silently drop out of the check.
var _ = []staller{(*modbus.Bus)(nil), (*serialline.Device)(nil), (*at.Module)(nil)}
