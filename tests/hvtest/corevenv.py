"""Virtual environments with an older ansible-core (and pywinrm), shared by the sanity matrix and the
end-to-end run per supported ansible-core version: .build/venv-core<version>."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

from .collection import ROOT

# The supported ansible-core releases other than the one in .venv, each with a Python it supports.
OLDER = {"2.16": "3.12", "2.17": "3.12", "2.18": "3.13", "2.19": "3.13", "2.20": "3.13"}


def python(version: str) -> str:
    """A Python interpreter of the given minor version: on PATH, else pyenv's versions folder."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv_root = pathlib.Path.home() / ".pyenv"
    found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False) if shutil.which("pyenv") else None
    if found and found.returncode == 0:
        pyenv_root = pathlib.Path(found.stdout.strip())
    candidates += sorted((str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python3")), reverse=True)
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "import sys"], capture_output=True, check=False).returncode == 0:
            return candidate
    raise RuntimeError(f"no Python {version} found (for ansible-core {', '.join(k for k, v in OLDER.items() if v == version)})")


# ansible-core 2.16 to 2.20 compile Ansible.Basic's FromJson for .NET Core (pwsh) with Newtonsoft,
# which gives JObjects, JArrays and DateTimes; on a Windows host, Windows PowerShell 5.1 compiles the
# other branch (JavaScriptSerializer), which gives Dictionary<string, object>, object[], numbers
# as int or long, and dates left as strings. Only 2.21 runs modules on POSIX hosts, so these releases
# run here only for the tests: their .NET Core branch is made to answer as a Windows host's would.
_NEWTONSOFT_FROM_JSON = "            return JsonConvert.DeserializeObject<T>(json);\n"
_AS_ON_WINDOWS = """            // hvtest: read as Windows PowerShell 5.1 reads it (tests/hvtest/corevenv.py)
            JsonTextReader hvReader = new JsonTextReader(new StringReader(json));
            hvReader.DateParseHandling = DateParseHandling.None;
            hvReader.FloatParseHandling = FloatParseHandling.Decimal;
            return (T)HvPlainJson(Newtonsoft.Json.Linq.JToken.ReadFrom(hvReader));
        }

        private static object HvPlainJson(Newtonsoft.Json.Linq.JToken token)
        {
            switch (token.Type)
            {
                case Newtonsoft.Json.Linq.JTokenType.Object:
                    Dictionary<string, object> values = new Dictionary<string, object>();
                    foreach (Newtonsoft.Json.Linq.JProperty property in ((Newtonsoft.Json.Linq.JObject)token).Properties())
                        values[property.Name] = HvPlainJson(property.Value);
                    return values;
                case Newtonsoft.Json.Linq.JTokenType.Array:
                    List<object> items = new List<object>();
                    foreach (Newtonsoft.Json.Linq.JToken item in (Newtonsoft.Json.Linq.JArray)token)
                        items.Add(HvPlainJson(item));
                    return items.ToArray();
                case Newtonsoft.Json.Linq.JTokenType.Integer:
                    long wide = Convert.ToInt64(((Newtonsoft.Json.Linq.JValue)token).Value);
                    if (wide >= int.MinValue && wide <= int.MaxValue)
                        return (int)wide;
                    return wide;
                default:
                    return ((Newtonsoft.Json.Linq.JValue)token).Value;
            }
"""


def _read_json_as_windows(folder: pathlib.Path) -> None:
    """Patches the venv's Ansible.Basic.cs so that FromJson under pwsh answers as on a Windows host."""
    for source in folder.glob("lib/python3*/site-packages/ansible/module_utils/csharp/Ansible.Basic.cs"):
        text = source.read_text(encoding="utf-8")
        if "hvtest: read as Windows PowerShell 5.1" in text:
            continue
        if text.count(_NEWTONSOFT_FROM_JSON) != 1:
            raise RuntimeError(f"{source}: FromJson is not as expected; the test patch needs updating")
        source.write_text(text.replace(_NEWTONSOFT_FROM_JSON, _AS_ON_WINDOWS), encoding="utf-8")


def venv(core: str) -> pathlib.Path:
    """The venv of ansible-core <core> with pywinrm, made on first use."""
    folder = ROOT / ".build" / f"venv-core{core}"
    ready = folder / ".e2e-ready"
    if ready.exists():
        _read_json_as_windows(folder)
        return folder
    if not (folder / "bin" / "python").exists():
        subprocess.run([python(OLDER[core]), "-m", "venv", str(folder)], check=True)
    major, minor = core.split(".")
    subprocess.run([str(folder / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    f"ansible-core>={core},<{major}.{int(minor) + 1}", "pywinrm>=0.5"], check=True)
    _read_json_as_windows(folder)
    ready.touch()
    return folder
