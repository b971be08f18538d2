"""python -m hvtest.sim SCENARIO [--port N] [--port-file F]: serve a simulated Hyper-V host over WinRM."""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import tempfile
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
    parser.add_argument("--root", type=pathlib.Path, help="the host's folders (ProgramData, Temp, exports); a new temporary one by default")
    options = parser.parse_args(argv)
    scenario = yaml.safe_load(options.scenario.read_text(encoding="utf-8"))
    root = options.root or pathlib.Path(tempfile.mkdtemp(prefix="hvsim-root-"))
    host = SimHost(scenario)
    for relative, text in (scenario.get("files") or {}).items():
        # Files the scenario puts on the host, under its root (the catalog tests' corrupt files).
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else bytes(text))
    server = serve(host, options.user, options.password, root, options.port, float(scenario.get("latency_ms", 0)) / 1000,
                   culture=scenario.get("culture"))
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
