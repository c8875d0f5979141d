#!/usr/bin/python3
"""The pymodbus side of edged's read-rate benchmark.

Connects to a Modbus TCP server with pymodbus's synchronous client and
sends the given reads round-robin, COUNT requests in all, one at a time
(as a bus master does), then prints "reads=N seconds=S rate=R".

  --read FC:ADDRESS:COUNT   (repeatable) e.g. --read 4:0:38 --read 3:257:4
"""

import argparse
import time

from pymodbus.client import ModbusTcpClient


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--unit", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--read", action="append", required=True)
    args = ap.parse_args()
    reads = []
    for r in args.read:
        fc, addr, n = (int(x) for x in r.split(":"))
        reads.append((fc, addr, n))
    client = ModbusTcpClient("127.0.0.1", port=args.port, timeout=2)
    if not client.connect():
        raise SystemExit("cannot connect")
    call = {1: client.read_coils, 2: client.read_discrete_inputs,
            3: client.read_holding_registers, 4: client.read_input_registers}
    start = time.perf_counter()
    for i in range(args.count):
        fc, addr, n = reads[i % len(reads)]
        res = call[fc](addr, n, slave=args.unit)
        if res.isError():
            raise SystemExit(f"read {fc}:{addr}:{n} failed: {res}")
    elapsed = time.perf_counter() - start
    client.close()
    print(f"reads={args.count} seconds={elapsed:.6f} rate={args.count / elapsed:.1f}")


if __name__ == "__main__":
    main()
