"""python -m hvtest.sim SCENARIO [--port N] [--port-file F]: serve a simulated Hyper-V host over WinRM."""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import threading

import yaml

from .endpoint import serve
from .host import SimHost


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvtest.sim", description=__doc__)
    parser.add_argument("scenario", type=pathlib.Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=pathlib.Path)
    parser.add_argument("--user", default="ansible")
    parser.add_argument("--password", default="Sim-Passw0rd!")
    options = parser.parse_args(argv)
    scenario = yaml.safe_load(options.scenario.read_text(encoding="utf-8"))
    host = SimHost(scenario)
    server = serve(host, options.user, options.password, options.port, float(scenario.get("latency_ms", 0)) / 1000)
    port = server.server_address[1]
    if options.port_file:
        options.port_file.write_text(str(port), encoding="utf-8")
    print(f"Hyper-V simulator {host.name} listening on http://127.0.0.1:{port}/wsman", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
