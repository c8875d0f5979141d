// Package serialdevice is what a [[serial]] sensor and an [[at]] module have
// in common: a device with a serial port of its own. New checks the name,
// the port and its line settings, the topic and the payload format; Run
// publishes the device offline, keeps the port open (adapters/internal/
// serialport) and shows it offline whenever the port closes; Commands
// subscribes the device's command topic under the retained-command rule
// (adapters/internal/mqttdevice).
//
// It deliberately does not decide when a device is online — a sensor that
// talks on its own is online with its port, a polled one or a module once
// it answers — nor what the bytes mean: that is each adapter's.
package serialdevice
