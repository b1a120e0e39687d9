#!/usr/bin/env python3
"""Checks every launchd/*.plist: it parses, runs a vj-* binary, and its Sockets carry exactly the
FileDescriptorName= values of the systemd .socket units that activate the same binary."""
import configparser
import pathlib
import plistlib
import sys

repo = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
units = repo / "units"


def unit_sockets(binary):
    """FileDescriptorName= of the sockets listed in the service that runs `binary`."""
    for service in units.glob("*.service"):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str
        cp.read(service)
        if not cp.get("Service", "ExecStart", fallback="").endswith("/" + binary):
            continue
        names = set()
        for sock in cp.get("Service", "Sockets", fallback="").split():
            sp = configparser.ConfigParser(strict=False, interpolation=None)
            sp.optionxform = str
            sp.read(units / sock)
            names.add(sp.get("Socket", "FileDescriptorName"))
        return names
    return None


failures = 0
for path in sorted((repo / "launchd").glob("*.plist")):
    with open(path, "rb") as f:
        plist = plistlib.load(f)
    binary = pathlib.Path(plist["ProgramArguments"][0]).name
    want = unit_sockets(binary)
    got = set(plist.get("Sockets", {}))
    if want is None:
        print(f"{path.name}: no systemd service runs {binary}")
        failures += 1
    elif want != got:
        print(f"{path.name}: sockets {sorted(got)} but the systemd units name {sorted(want)}")
        failures += 1
    else:
        print(f"{path.name}: ok ({binary}, sockets {sorted(got)})")
sys.exit(1 if failures else 0)
