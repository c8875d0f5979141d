// Package serialdevice is what a [[serial]] sensor and an [[at]] module have
// in common: a device with a serial port of its own. New checks the name,
// the port and its line settings, the topic and the payload format; Run
// publishes the device offline, keeps the port open (adapters/internal/
// serialport) and shows it offline whenever the port closes; Commands
// subscribes the device's command topic under the retained-command rule
// (adapters/internal/mqttdevice). It keeps the device's progress record
// (package liveness): a port open, each chunk of a Write and each operation
// a session marks Busy must end within its bound plus a margin, or Stalled
// says what is stuck.
//
// It deliberately does not decide when a device is online — a sensor that
// talks on its own is online with its port, a polled one or a module once
// it answers — nor what the bytes mean: that is each adapter's.
package serialdevice
