// Package mqttdevice is what every adapter shows of a device on the local
// broker, written once instead of once per adapter: the small Publisher and
// Subscriber an adapter is given, a publish that logs the first failure of a
// run and counts the rest, the retained {gateway}/{device}/status published
// once per change, a point's topic and payload settings with the decision
// whether a reading goes out now (adapters/internal/pointstate), and the
// rule that a retained message on a command topic is not a command.
//
// It deliberately knows nothing of ports, protocols or polling: an adapter
// decides when a device is online and what a reading is; this package says
// how that reaches MQTT. It imports no broker either: cmd/edged hands the
// adapters something that publishes and subscribes.
package mqttdevice
