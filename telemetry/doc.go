// Package telemetry is the vocabulary every part of edged shares: a Point
// reading, the Message that carries it over MQTT, and the topic templates
// that name it. It imports nothing else of edged, so adapters, the broker,
// the buffer and the bridge can all speak it without depending on each other.
//
// It deliberately holds no behaviour beyond formatting: no I/O, no state.
package telemetry
