"""Dependencies: every requirement is pinned, and constraints.txt pins the whole transitive set."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s#;]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-r ")):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not pinned with ==: {line}"
        found[canonical(match.group(1))] = match.group(3)
    return found


def test_every_requirement_is_pinned_at_the_constrained_version():
    constraints = pins(ROOT / "constraints.txt")
    for name in ("requirements.txt", "requirements-local.txt", "requirements-dev.txt"):
        for package, version in pins(ROOT / name).items():
            assert constraints.get(package) == version, f"{name}: {package}=={version}"


def test_the_installed_environment_is_the_constrained_one():
    constraints = pins(ROOT / "constraints.txt")
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differing = {
        package: (version, installed[package])
        for package, version in constraints.items()
        if package in installed and installed[package] != version
    }
    # Everything installed is constrained, apart from the installer itself.
    unconstrained = set(installed) - set(constraints) - {"pip"}

    assert differing == {}
    assert unconstrained == set()
