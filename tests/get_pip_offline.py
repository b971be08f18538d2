"""Stand-in for the pip bootstrap script ansible-test downloads (no network here).

ansible-test runs this with pip-install arguments in a new virtual environment; ensurepip
gives the environment a pip, which then installs what was asked from the usual index.
"""

from __future__ import annotations

import subprocess
import sys

arguments = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *arguments])
