// Package homeassistant announces edged's devices and points to Home
// Assistant through MQTT discovery, so that they appear there without a
// line of YAML.
//
// For every device of the config it publishes one Home Assistant device,
// and for every point one entity: a sensor, a binary_sensor, a switch or a
// number, chosen by config.Point.HAPlatform. Each entity's state is the
// point's own topic; its availability is the gateway's {gateway}/status,
// the device's {gateway}/{device}/status and the point's last payload (a
// bad-quality reading makes it unavailable rather than zero). Writes from a
// switch or a number go to the point's /set topic, the same checked path as
// any other write. The gateway itself is a device with edged's health as
// diagnostic entities, read from {gateway}/edged/uplink and
// {gateway}/edged/stats.
//
// Configs are retained. At start the package reads back the retained
// configs it announced before (the broker's store is the memory: it holds
// exactly what Home Assistant sees) and clears those of points and devices
// that left the config; it announces everything again whenever Home
// Assistant says online on <prefix>/status.
//
// It deliberately publishes no readings and takes no writes: the adapters
// do. It knows the broker only as a one-method Publisher and Subscriber.
package homeassistant
