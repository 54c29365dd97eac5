#!/usr/bin/env python3
"""Checks that each workspace crate's `rust-version` is still true: no locked dependency
declares a newer one (`cargo metadata --locked`). Run by .ci/run; exits 1 naming the
dependencies that need more than a crate declares."""

import json
import subprocess
import sys


def version(text):
    """'1.90' or '1.90.0' as a comparable tuple; None when absent."""
    if not text:
        return None
    return tuple(int(part) for part in text.split("."))[:3] + (0,) * (3 - len(text.split(".")))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(meta["workspace_members"])
    needs = sorted(
        (
            (version(p.get("rust_version")), p["name"], p["version"])
            for p in meta["packages"]
            if p["id"] not in members and p.get("rust_version")
        ),
        reverse=True,
    )
    faults = 0
    for crate in (p for p in meta["packages"] if p["id"] in members):
        declared = version(crate.get("rust_version"))
        if declared is None:
            print(f"{crate['name']}: no rust-version declared")
            faults += 1
            continue
        newer = [n for n in needs if n[0] > declared]
        for need, name, ver in newer:
            print(
                f"{crate['name']} declares rust-version {crate['rust_version']}, "
                f"but {name} {ver} needs {'.'.join(map(str, need))}"
            )
        faults += len(newer)
    top = needs[0] if needs else None
    if top:
        print(
            f"rust-version: the newest any locked dependency needs is "
            f"{'.'.join(map(str, top[0]))} ({top[1]} {top[2]}); {faults} fault(s)"
        )
    sys.exit(1 if faults else 0)


if __name__ == "__main__":
    main()
