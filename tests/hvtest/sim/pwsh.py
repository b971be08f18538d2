"""Running what ansible sends over WinRM in PowerShell, as a Windows host's WinRM service does.

The endpoint hands each command (the `powershell ... -EncodedCommand ...` line and its stdin)
to a new pwsh process: ansible-core's own bootstrap and exec wrapper start, compile
Ansible.Basic, load the collection's module_utils and run the module, all unchanged. What a
Windows host provides and Linux does not is set up here, and only here:

- the interpreter the payload names (`powershell`, `PowerShell` in ansible-core 2.16 to 2.18):
  started as pwsh. The exec wrapper looks that name up on PATH and starts the interpreter again
  when the name resolves outside $PSHOME; on Windows it resolves to powershell.exe in $PSHOME,
  so links under each spelling point into pwsh's $PSHOME here too, and no module run is
  started twice;
- the environment variables Windows sets that the modules read: TEMP/TMP, ProgramData (the
  catalog's default folder), COMPUTERNAME;
- the CIM cmdlets, which Linux lacks: tests/hvtest/pwsh/HvSimCim on PSModulePath, auto-loaded
  by PowerShell the first time a module calls one, forwarding to the simulated host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pathlib
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import IO

from ..collection import ROOT

SHIM_MODULES = ROOT / "tests" / "hvtest" / "pwsh"
SHARED_TOOLS = ROOT.parent / "shared" / "tools"
# A module run that outlives this is killed, so a hung pwsh can never hang a test.
RUN_LIMIT_SECONDS = 900


# A folder of lock files shared by simulators on one machine (the benchmark's fleet): each module
# run holds one while it computes, so no more run at once than there are files. Twenty simulated
# hosts share this machine's cores where each real host has its own, and twenty pwsh processes at
# once on two cores only slow each other (6.2 s of CPU a module run against 3.5 s alone, measured).
# A module that sleeps between reads of its jobs uses no core on its host: the CIM shim then has
# the simulator sleep for it (POST /sim/sleep), which lets the slot go meanwhile.
SLOTS_ENV = "HVSIM_PWSH_SLOTS"


class CoreSlot:
    """One slot of $HVSIM_PWSH_SLOTS: taken (waiting for one to be free), let go, taken again, closed when its run ends.

    A run that ends while its module sleeps (pwsh killed, or gone) closes the slot; the sleep then
    takes nothing back, so no slot is held by a run that no longer exists.
    """

    def __init__(self, folder: str) -> None:
        self.slots = sorted(pathlib.Path(folder).glob("slot-*"))
        if not self.slots:
            raise RuntimeError(f"{SLOTS_ENV}={folder} holds no slot-* files")
        self.handle: IO[str] | None = None
        self.closed = False
        self.lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self.lock:
                if self.closed or self.handle is not None:
                    return
                for slot in self.slots:
                    handle = open(slot, "a", encoding="utf-8")  # pylint: disable=consider-using-with
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        handle.close()
                        continue
                    self.handle = handle
                    return
            time.sleep(0.01)

    def let_go(self, close: bool = False) -> None:
        with self.lock:
            self.closed = self.closed or close
            if self.handle is not None:
                fcntl.flock(self.handle, fcntl.LOCK_UN)
                self.handle.close()
                self.handle = None


@contextlib.contextmanager
def core_slot() -> Iterator[CoreSlot | None]:
    """Holds a slot of $HVSIM_PWSH_SLOTS while a module runs (the slot, to let go while it sleeps); None when unset."""
    folder = os.environ.get(SLOTS_ENV)
    if not folder:
        yield None
        return
    slot = CoreSlot(folder)
    slot.take()
    try:
        yield slot
    finally:
        slot.let_go(close=True)


class PwshMissing(RuntimeError):
    """No PowerShell 7 to run the modules in."""


INTERPRETER_NAMES = ("powershell", "PowerShell", "powershell.exe")


def find_pwsh() -> str:
    """pwsh from PATH, else the project's shared copy (../shared/tools/pwsh); PwshMissing otherwise."""
    found = shutil.which("pwsh")
    if found:
        return found
    shared = SHARED_TOOLS / "pwsh"
    if shared.is_file() and os.access(shared, os.X_OK):
        return str(shared)
    raise PwshMissing(
        "PowerShell 7 (pwsh) is needed to run the collection's modules against the simulator, and none was found: "
        "put a pwsh on PATH (PowerShell 7.4 or later for Linux, from Microsoft's PowerShell releases), or, in this "
        f"project's workplace, {SHARED_TOOLS} (export PATH={SHARED_TOOLS}:$PATH).")


def pshome(pwsh: str) -> str:
    """pwsh's $PSHOME (asked once per process tree: HVSIM_PSHOME carries it to child processes)."""
    known = os.environ.get("HVSIM_PSHOME")
    if known and pathlib.Path(known).is_dir():
        return known
    done = subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-Command", "$PSHOME"], capture_output=True, text=True, check=True,
                          env=dict(os.environ, POWERSHELL_TELEMETRY_OPTOUT="1", POWERSHELL_UPDATECHECK="Off"))
    os.environ["HVSIM_PSHOME"] = done.stdout.strip()
    return os.environ["HVSIM_PSHOME"]


@dataclasses.dataclass
class Run:
    stdout: bytes
    stderr: bytes
    exit_code: int
    seconds: float


class PwshRunner:
    """Runs WinRM commands in pwsh with the environment a Windows host would give them."""

    def __init__(self, root: pathlib.Path, host_name: str, cim_url: str, culture: str | None = None) -> None:
        self.root = root
        self.pwsh = find_pwsh()
        self.bin = root / "bin"
        self.temp = root / "Temp"
        self.program_data = root / "ProgramData"
        for folder in (self.bin, self.temp, self.program_data):
            folder.mkdir(parents=True, exist_ok=True)
        # On Windows `powershell` on PATH is both executable and in $PSHOME. No file here is both,
        # so each payload gets the PATH its wrapper needs: ansible-core 2.19 and later only look
        # the name up (and start a second process unless it resolves into $PSHOME); 2.16 to 2.18
        # run it (their command line starts PowerShell from PowerShell).
        self.bin_exec = root / "bin-exec"
        self.bin_exec.mkdir(parents=True, exist_ok=True)
        inside = pathlib.Path(pshome(self.pwsh)) / "pwsh.dll"
        for folder, target in ((self.bin, inside), (self.bin_exec, pathlib.Path(self.pwsh))):
            for name in INTERPRETER_NAMES:
                link = folder / name
                if not link.is_symlink():
                    link.symlink_to(target)
        self.host_name = host_name
        self.cim_url = cim_url
        self.culture = culture

    def environment(self, run_id: str, wrapper_runs_interpreter: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PATH": f"{self.bin_exec if wrapper_runs_interpreter else self.bin}{os.pathsep}{env.get('PATH', '')}",
            "TEMP": str(self.temp),
            "TMP": str(self.temp),
            "ProgramData": str(self.program_data),
            "COMPUTERNAME": self.host_name,
            "PSModulePath": os.pathsep.join(p for p in (str(SHIM_MODULES), env.get("PSModulePath", "")) if p),
            "HVSIM_CIM_URL": self.cim_url,
            "HVSIM_RUN": run_id,
            # pwsh reads these; Windows would not have them, and a module must not depend on them.
            "POWERSHELL_TELEMETRY_OPTOUT": "1",
            "POWERSHELL_UPDATECHECK": "Off",
            # The .NET runtime's profile-guided JIT pays off in long-lived processes; a module run is
            # a few seconds, most of them compiling Ansible.Basic, which it makes about 8% dearer in
            # CPU (measured here). Windows PowerShell 5.1 on .NET Framework has no such JIT.
            "DOTNET_TieredPGO": "0",
        })
        if self.culture:
            # pwsh takes its culture from the locale, as Windows PowerShell takes the user's.
            locale = self.culture.replace("-", "_") + ".UTF-8"
            env.update({"LANG": locale, "LC_ALL": locale})
        return env

    def run(self, command_line: str, stdin: bytes, run_id: str) -> Run:
        """Runs one command; whatever happens it ends (a hang is killed after RUN_LIMIT_SECONDS).

        A payload whose exec manifest is not the 2.19+ bootstrap (that of 2.16 to 2.18, and raw
        commands) gets the PATH where the interpreter's name can be run.
        """
        argv = shlex.split(command_line, posix=True)
        if not argv:
            return Run(b"", b"empty command line\n", 1, 0.0)
        if argv[0] in INTERPRETER_NAMES:
            argv[0] = self.pwsh
        started = time.monotonic()
        try:
            env = self.environment(run_id, wrapper_runs_interpreter=b'"name": "exec_wrapper"' not in stdin[:4096])
            done = subprocess.run(argv, input=stdin, capture_output=True, env=env, cwd=str(self.temp),
                                  timeout=RUN_LIMIT_SECONDS, check=False)
        except subprocess.TimeoutExpired as expired:
            return Run(expired.stdout or b"", (expired.stderr or b"") + f"\nkilled after {RUN_LIMIT_SECONDS} s\n".encode(), 1,
                       time.monotonic() - started)
        except FileNotFoundError as missing:
            return Run(b"", f"{argv[0]}: {missing}\n".encode(), 1, time.monotonic() - started)
        return Run(done.stdout, done.stderr, done.returncode, time.monotonic() - started)
