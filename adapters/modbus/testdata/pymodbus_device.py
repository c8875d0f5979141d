#!/usr/bin/python3
"""A Modbus device for edged's tests, served by pymodbus (3.0.x).

It serves the register map in a JSON file over Modbus TCP, RTU framed over
TCP, or RTU on a serial port (e.g. one end of a socat pty pair):

  {"1": {"holding": {"0": 1234, ...}, "input": {...},
         "coil": {"0": true}, "discrete": {...}},
   "2": {...}}

Every register or bit not listed is a hole: a request touching it gets
exception 2 (Illegal Data Address), as a real device with gaps in its map
does. A value "fail" makes a read touching it answer exception 4 (Server
Device Failure). Registers are 0..65535; coils and inputs are true/false.

After every request it rewrites the stats file (atomically) with the number
of requests per unit and function code and every write it took:

  {"requests": {"1": {"3": 5, "4": 2}}, "writes": [{"unit": 1, "fc": 6,
   "address": 10, "values": [42]}], "total": 7}

With --identity VENDOR,PRODUCT,REVISION every unit answers a read of its
basic device identification (function 43, MEI type 14) with those objects.

Units listed (comma-separated) in the control file do not answer at all,
like a device that was unplugged; emptying the file brings them back.

It prints "READY <port or device>" on stdout once it serves.
"""

import argparse
import asyncio
import json
import logging
import os
import sys

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext
from pymodbus.device import ModbusDeviceIdentification
from pymodbus.exceptions import NoSuchSlaveException
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

TABLES = {1: "coil", 5: "coil", 15: "coil", 2: "discrete",
          3: "holding", 6: "holding", 16: "holding", 22: "holding", 23: "holding",
          4: "input"}


class Recorder:
    """Counts requests and writes and keeps the stats file current."""

    def __init__(self, path):
        self.path = path
        self.requests = {}
        self.writes = []
        self.total = 0

    def count(self, unit, fc):
        per = self.requests.setdefault(str(unit), {})
        per[str(fc)] = per.get(str(fc), 0) + 1
        self.total += 1
        self.flush()

    def write(self, unit, fc, address, values):
        self.writes.append({"unit": unit, "fc": fc, "address": address,
                            "values": [v if isinstance(v, bool) else int(v) for v in values]})
        self.flush()

    def flush(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"requests": self.requests, "writes": self.writes, "total": self.total}, f)
        os.replace(tmp, self.path)


class Device(ModbusSlaveContext):
    """One unit: a sparse map with holes, addresses 0-based as on the wire."""

    def __init__(self, unit, tables, recorder):
        super().__init__(zero_mode=True)
        self.unit = unit
        self.recorder = recorder
        self.data = {name: {int(a): v for a, v in tables.get(name, {}).items()}
                     for name in ("holding", "input", "coil", "discrete")}

    def validate(self, fc_as_hex, address, count=1):
        self.recorder.count(self.unit, fc_as_hex)
        table = self.data[TABLES.get(fc_as_hex, "holding")]
        return all((address + i) in table for i in range(count))

    def getValues(self, fc_as_hex, address, count=1):
        table = self.data[TABLES.get(fc_as_hex, "holding")]
        values = [table[address + i] for i in range(count)]
        if any(v == "fail" for v in values):
            raise RuntimeError("simulated device failure")
        return values

    def setValues(self, fc_as_hex, address, values):
        name = TABLES.get(fc_as_hex, "holding")
        fc = fc_as_hex
        for i, v in enumerate(values):
            self.data[name][address + i] = bool(v) if name == "coil" else int(v) & 0xFFFF
        self.recorder.write(self.unit, fc, address, values)


class Units(ModbusServerContext):
    """The devices on the bus; muted units raise so pymodbus stays silent."""

    def __init__(self, devices, control):
        super().__init__(slaves=devices, single=False)
        self.control = control
        self.stamp = None
        self.muted = set()

    def _reload(self):
        if not self.control:
            return
        try:
            stamp = os.stat(self.control).st_mtime_ns
        except FileNotFoundError:
            self.muted, self.stamp = set(), None
            return
        if stamp != self.stamp:
            with open(self.control) as f:
                self.muted = {int(u) for u in f.read().replace(",", " ").split()}
            self.stamp = stamp

    def __getitem__(self, unit):
        self._reload()
        if unit in self.muted:
            raise NoSuchSlaveException(f"unit {unit} is muted")
        return super().__getitem__(unit)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--map", required=True)
    ap.add_argument("--tcp", type=int, help="serve Modbus TCP on 127.0.0.1:PORT (0: any)")
    ap.add_argument("--rtu", help="serve RTU on this serial device")
    ap.add_argument("--rtu-over-tcp", action="store_true", help="with --tcp: RTU frames on the TCP stream")
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--parity", default="E")
    ap.add_argument("--stats")
    ap.add_argument("--control")
    ap.add_argument("--identity", help="VENDOR,PRODUCT,REVISION for function 43/14")
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL)

    with open(args.map) as f:
        spec = json.load(f)
    recorder = Recorder(args.stats)
    recorder.flush()
    devices = {int(u): Device(int(u), t, recorder) for u, t in spec.items()}
    context = Units(devices, args.control)
    identity = None
    if args.identity:
        vendor, product, revision = (args.identity.split(",") + ["", "", ""])[:3]
        identity = ModbusDeviceIdentification(info_name={
            "VendorName": vendor, "ProductCode": product, "MajorMinorRevision": revision})

    if args.rtu:
        server = ModbusSerialServer(context, ModbusRtuFramer, identity=identity, port=args.rtu, baudrate=args.baud,
                                    parity=args.parity, stopbits=1, bytesize=8,
                                    ignore_missing_slaves=True)
        await server.start()
        print("READY", args.rtu, flush=True)
        await server.serve_forever()
    else:
        framer = ModbusRtuFramer if args.rtu_over_tcp else ModbusSocketFramer
        server = ModbusTcpServer(context, framer, identity=identity, address=("127.0.0.1", args.tcp or 0),
                                 allow_reuse_address=True, ignore_missing_slaves=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        port = server.server.sockets[0].getsockname()[1]
        print("READY", port, flush=True)
        await task


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
