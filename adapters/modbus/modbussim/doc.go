// Package modbussim is a simulated single-phase energy meter served over
// Modbus TCP on loopback, for `edged demo` and for tests that need a device
// without hardware. Its input registers follow the Eastron SDM120 layout
// (float32, high word first), so the demo exercises the same read plan and
// decoding a real meter does: voltage wanders around 230 V with noise, the
// load current drifts and steps, power is V×I×pf and energy accumulates.
//
// It is a demonstration device, not a Modbus test suite: it answers reads
// of the registers below and writes of its one coil, and refuses the rest.
package modbussim
