"""A WS-Management endpoint (the subset pywinrm uses) in front of the simulated host.

Plain HTTP with Basic auth on loopback, TCP_NODELAY on every connection. Shell create, command,
send, receive, signal and delete behave as a Windows host's WinRM service does for ansible-core's
winrm connection; a command runs once its stdin has ended, in a thread, so Receive can answer
the OperationTimeout fault while a long module runs, as a real host does. Each command runs in
pwsh exactly as ansible sent it (sim/pwsh.py); the CIM calls of the modules come back here
as POST /sim/cim (sim/cim.py).

/sim/* is a small JSON control API for tests: state, call log, faults.
"""

from __future__ import annotations

import base64
import json
import pathlib
import socket
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from . import cim, payload
from .host import SimHost
from .pwsh import CoreSlot, PwshRunner, core_slot

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
DONE = SHELL + "CommandState/Done"
RUNNING = SHELL + "CommandState/Running"
OPERATION_TIMEOUT_CODE = 2150858793


class Command:
    def __init__(self, command_line: str) -> None:
        self.id = str(uuid.uuid4()).upper()
        self.command_line = command_line
        self.stdin = bytearray()
        self.done = threading.Event()
        self.stdout = b""
        self.stderr = b""
        self.exit_code = 0
        self.sent = False
        self.dropped = False  # a Receive of it was dropped: the controller never got its result
        self.created = time.monotonic()
        # Wall-clock times for the benchmark's timeline (comparable across processes).
        self.times: dict[str, float] = {"command": time.time()}


class Endpoint:
    """The endpoint's state: shells, commands, the host, and endpoint-level faults."""

    def __init__(self, host: SimHost, username: str, password: str, latency: float = 0.0) -> None:
        self.host = host
        self.credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.latency = latency
        self.shells: dict[str, dict[str, Command]] = {}
        self.lock = threading.Lock()
        self.drop_receives = 0
        self.drop_module: str | None = None
        self.module_runs: list[dict] = []
        self.operations = 0
        self.runner: PwshRunner | None = None
        self.shell_times: list[dict] = []  # each shell's creation and deletion, wall clock
        self.first_cim: dict[str, float] = {}  # run id -> its first CIM call, wall clock
        self.slots: dict[str, CoreSlot | None] = {}  # run id -> its core slot, while it runs
        self.slot_waits: dict[str, float] = {}  # run id -> seconds it waited to take its slot back after sleeps

    def sleep(self, run: str, seconds: float) -> None:
        """A module run's Start-Sleep, slept here: its core slot (if it has one) is free meanwhile."""
        slot = self.slots.get(run)
        if slot is not None:
            slot.let_go()
        try:
            time.sleep(max(0.0, seconds))
        finally:
            if slot is not None:
                waiting = time.monotonic()
                slot.take()
                with self.lock:
                    self.slot_waits[run] = self.slot_waits.get(run, 0.0) + time.monotonic() - waiting

    def run(self, command: Command) -> None:
        """Runs a command; whatever happens, the command ends (a bug here must not hang ansible)."""
        try:
            self._run(command)
        except Exception as error:  # pylint: disable=broad-exception-caught
            command.stderr = f"The Hyper-V simulator could not run this command: {error}\n{traceback.format_exc()}".encode()
            command.exit_code = 1
        finally:
            command.done.set()

    def _run(self, command: Command) -> None:
        invocation = payload.decode(command.command_line, bytes(command.stdin))
        if self.runner is None:
            raise RuntimeError("the endpoint has no PowerShell runner")
        with core_slot() as slot:
            self.slots[command.id] = slot
            command.times["pwsh_start"] = time.time()
            try:
                done = self.runner.run(command.command_line, bytes(command.stdin), command.id)
            finally:
                command.times["pwsh_end"] = time.time()
                self.slots.pop(command.id, None)
        # Time the run spent waiting for another host's module to let a core go: not this host's.
        command.times["slot_wait"] = round(self.slot_waits.pop(command.id, 0.0), 3)
        command.times["first_cim"] = self.first_cim.get(command.id)
        command.stdout, command.stderr, command.exit_code = done.stdout, done.stderr, done.exit_code
        try:
            result = json.loads(done.stdout.decode("utf-8", "replace").strip() or "null")
        except ValueError:
            result = None
        with self.lock:
            self.module_runs.append({"module": invocation.module, "run": command.id,
                                     "args": {k: v for k, v in invocation.args.items() if not k.startswith("_ansible_")},
                                     "result": result, "dropped": command.dropped,
                                     # from the WS-Man Command to the end: what the controller waited, near enough
                                     "elapsed": round(time.monotonic() - command.created, 3),
                                     "exit_code": done.exit_code, "seconds": round(done.seconds, 3),
                                     # the command's own dict: the reply's time is added once it is sent
                                     "times": command.times})


def _envelope(message_id: str, action: str, body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}">'
        f"<s:Header><a:Action>{escape(action)}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:RelatesTo>{escape(message_id)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode("utf-8")


def _fault(message_id: str, code: int, reason: str) -> bytes:
    body = (
        f'<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code>'
        f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{code}" Machine="sim">'
        f"<f:Message>{escape(reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope(message_id, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", body)


class Handler(BaseHTTPRequestHandler):
    server_version = "Microsoft-HTTPAPI/2.0"
    protocol_version = "HTTP/1.1"
    endpoint: Endpoint

    def setup(self) -> None:
        super().setup()
        # Without it every WS-Man round trip waits ~40 ms on Nagle's algorithm.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        return

    def _reply(self, status: int, body: bytes, content_type: str = "application/soap+xml;charset=UTF-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Basic realm=\"WSMAN\"")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        self._reply(status, json.dumps(value, default=str).encode("utf-8"), "application/json")

    def do_GET(self) -> None:  # pylint: disable=invalid-name
        endpoint = self.endpoint
        if self.path == "/sim/state":
            self._json(endpoint.host.snapshot())
        elif self.path == "/sim/calls":
            self._json({"calls": endpoint.host.calls, "module_runs": endpoint.module_runs, "operations": endpoint.operations})
        elif self.path == "/sim/timeline":
            self._json({"shells": endpoint.shell_times, "jobs": endpoint.host.timeline()})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:  # pylint: disable=invalid-name
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if self.path == "/sim/cim":
            self.endpoint.host.context.run = self.headers.get("X-HvSim-Run", "")
            self.endpoint.first_cim.setdefault(self.endpoint.host.context.run, time.time())
            self._json(cim.answer(self.endpoint.host, json.loads(data)))
            return
        if self.path == "/sim/sleep":
            self.endpoint.sleep(self.headers.get("X-HvSim-Run", ""), float(json.loads(data)["seconds"]))
            self._json({})
            return
        if self.path.startswith("/sim/"):
            self._control(self.path, json.loads(data or b"{}"))
            return
        if self.headers.get("Authorization", "") != f"Basic {self.endpoint.credentials}":
            self._reply(401, b"")
            return
        with self.endpoint.lock:
            self.endpoint.operations += 1
        if self.endpoint.latency:
            time.sleep(self.endpoint.latency)
        root = ET.fromstring(data)
        action = root.findtext("s:Header/a:Action", default="", namespaces=NS)
        message_id = root.findtext("s:Header/a:MessageID", default="", namespaces=NS)
        shell_id = next((n.text for n in root.iter(f"{{{NS['w']}}}Selector") if n.get("Name") == "ShellId"), None)
        body = root.find("s:Body", NS)
        if action == ACTION_CREATE:
            self._create(message_id)
        elif action == ACTION_DELETE:
            self.endpoint.shells.pop(shell_id or "", None)
            for shell in self.endpoint.shell_times:
                if shell["id"] == shell_id:
                    shell["deleted"] = time.time()
            self._reply(200, _envelope(message_id, action + "Response", ""))
        elif action == SHELL + "Command":
            self._command(message_id, shell_id, body)
        elif action == SHELL + "Send":
            self._send(message_id, shell_id, body)
        elif action == SHELL + "Receive":
            self._receive(message_id, shell_id, body, root)
        elif action == SHELL + "Signal":
            self._reply(200, _envelope(message_id, SHELL + "SignalResponse", "<rsp:SignalResponse/>"))
        else:
            self._reply(500, _fault(message_id, 2150858843, f"action {action} is not supported by the simulator"))

    def _create(self, message_id: str) -> None:
        shell_id = str(uuid.uuid4()).upper()
        self.endpoint.shells[shell_id] = {}
        self.endpoint.shell_times.append({"id": shell_id, "created": time.time(), "deleted": None})
        body = (
            "<x:ResourceCreated xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\"><a:Address>http://127.0.0.1/wsman</a:Address>"
            "<a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>'
        )
        self._reply(200, _envelope(message_id, ACTION_CREATE + "Response", body))

    def _command(self, message_id: str, shell_id: str | None, body: ET.Element) -> None:
        line = body.find("rsp:CommandLine", NS)
        text = (line.findtext("rsp:Command", default="", namespaces=NS) + " " + (line.findtext("rsp:Arguments", default="", namespaces=NS) or "")).strip()
        command = Command(text)
        self.endpoint.shells.setdefault(shell_id or "", {})[command.id] = command
        self._reply(200, _envelope(message_id, SHELL + "CommandResponse",
                                   f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"))

    def _find(self, shell_id: str | None, command_id: str | None) -> Command | None:
        return self.endpoint.shells.get(shell_id or "", {}).get(command_id or "")

    def _send(self, message_id: str, shell_id: str | None, body: ET.Element) -> None:
        stream = body.find("rsp:Send/rsp:Stream", NS)
        command = self._find(shell_id, stream.get("CommandId") if stream is not None else None)
        if command is not None and stream is not None:
            if stream.text:
                command.stdin.extend(base64.b64decode(stream.text))
            if stream.get("End", "").lower() == "true":
                threading.Thread(target=self.endpoint.run, args=(command,), daemon=True).start()
        self._reply(200, _envelope(message_id, SHELL + "SendResponse", "<rsp:SendResponse/>"))

    def _receive(self, message_id: str, shell_id: str | None, body: ET.Element, root: ET.Element) -> None:
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
        command = self._find(shell_id, desired.get("CommandId") if desired is not None else None)
        if command is None:
            self._reply(500, _fault(message_id, 2150858843, "The request for the Windows Remote Shell with ShellId failed because the shell was not found"))
            return
        if not command.sent and not command.stdin and not command.done.is_set():
            # no stdin: a raw command, run it now
            threading.Thread(target=self.endpoint.run, args=(command,), daemon=True).start()
        with self.endpoint.lock:
            drop = self.endpoint.drop_receives > 0
            if drop and self.endpoint.drop_module:
                drop = payload.decode(command.command_line, bytes(command.stdin)).module == self.endpoint.drop_module
            if drop:
                self.endpoint.drop_receives -= 1
        if drop:
            # The connection dies mid-receive, as when a network path to the host fails.
            with self.endpoint.lock:
                command.dropped = True
                for run in self.endpoint.module_runs:
                    if run["run"] == command.id:
                        run["dropped"] = True
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        timeout_text = root.findtext("s:Header/w:OperationTimeout", default="PT20S", namespaces=NS)
        timeout = float(timeout_text.strip("PTS") or 20)
        if not command.done.wait(min(timeout, 20.0)):
            self._reply(500, _fault(message_id, OPERATION_TIMEOUT_CODE,
                                    "The WS-Management service cannot complete the operation within the time specified in OperationTimeout."))
            return
        command.sent = True
        command.times["replied"] = time.time()
        out = base64.b64encode(command.stdout).decode()
        err = base64.b64encode(command.stderr).decode()
        body_xml = (
            f'<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="{command.id}">{out}</rsp:Stream>'
            f'<rsp:Stream Name="stdout" CommandId="{command.id}" End="true"></rsp:Stream>'
            f'<rsp:Stream Name="stderr" CommandId="{command.id}">{err}</rsp:Stream>'
            f'<rsp:Stream Name="stderr" CommandId="{command.id}" End="true"></rsp:Stream>'
            f'<rsp:CommandState CommandId="{command.id}" State="{DONE}"><rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>'
            "</rsp:ReceiveResponse>"
        )
        self._reply(200, _envelope(message_id, SHELL + "ReceiveResponse", body_xml))

    def _control(self, path: str, data: dict) -> None:
        endpoint = self.endpoint
        if path == "/sim/faults":
            endpoint.host.add_fault(data)
        elif path == "/sim/endpoint":
            endpoint.drop_receives = int(data.get("drop_receives", endpoint.drop_receives))
            endpoint.drop_module = data.get("drop_module", endpoint.drop_module)
            endpoint.latency = float(data.get("latency_ms", endpoint.latency * 1000)) / 1000
        elif path == "/sim/write":
            endpoint.host.write(data["vm"], int(data.get("disk", 0)), int(data.get("offset", 0)), int(data["length"]))
        elif path == "/sim/invalidate_rct":
            endpoint.host.invalidate_rct(data["vm"])
        elif path == "/sim/add_disk":
            endpoint.host.add_disk(data["vm"], data["path"], float(data.get("size_gb", 10)))
        elif path == "/sim/remove":
            endpoint.host.remove_reference_point(data["instance_id"])
        elif path == "/sim/remove_switch":
            endpoint.host.remove_switch(data["name"])
        elif path == "/sim/power":
            endpoint.host.power(data["vm"], data["state"])
        elif path == "/sim/disk_hashes":
            self._json(endpoint.host.disk_hashes(data["vm"]))
            return
        elif path == "/sim/calls/clear":
            endpoint.host.calls.clear()
            endpoint.module_runs.clear()
            endpoint.operations = 0
            endpoint.shell_times.clear()
        else:
            self._json({"error": "not found"}, 404)
            return
        self._json({"ok": True})


def serve(host: SimHost, username: str, password: str, root: "pathlib.Path", port: int = 0, latency: float = 0.0,
          culture: str | None = None) -> ThreadingHTTPServer:
    """A started server on 127.0.0.1 (port 0 picks a free one) running commands in pwsh under root; stop it with shutdown()."""
    endpoint = Endpoint(host, username, password, latency)
    handler = type("BoundHandler", (Handler,), {"endpoint": endpoint})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    endpoint.runner = PwshRunner(root, host.name, f"http://127.0.0.1:{server.server_address[1]}/sim/cim", culture)
    # shutdown() waits for the loop's next poll: the default half second, on every test's and every
    # benchmark scenario's simulator, was most of the time it took to stop one.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
