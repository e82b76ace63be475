"""Exit 0 when every pin (name==version) of the requirements file is installed at its version, else 1 with a line
naming the first that is not: test/clients/run.sh and test/oauth/run.sh install their pins only then.

Usage: python pins.py LABEL REQUIREMENTS
"""

import sys
from importlib.metadata import PackageNotFoundError, version

label, path = sys.argv[1], sys.argv[2]
for line in open(path):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        if have != want:
            sys.exit(f"{label}: {name} {have or 'missing'}, want {want}: installing {path}")
