"""Dependencies: every requirement is pinned, and constraints.txt pins the whole transitive set."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

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


REQUIREMENTS = (
    "requirements.txt",
    "requirements-language.txt",
    "requirements-local.txt",
    "requirements-dev.txt",
)


def test_every_requirement_is_pinned_at_the_constrained_version():
    constraints = pins(ROOT / "constraints.txt")
    for name in REQUIREMENTS:
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


# --- what our code imports is what we pin; the lock is the whole transitive set ---------------

#: Our own top-level packages (and the bench's local modules), never a distribution.
OURS = {"duoniche", "exercises", "learning", "notifications", "payments", "tests", "bench"}
SCANNED = ("duoniche", "exercises", "learning", "notifications", "payments", "tests")


def imported_top_levels() -> dict[str, set[str]]:
    """Top-level modules imported anywhere in our code (also lazily or under TYPE_CHECKING), not
    the standard library's nor ours, each with a file that imports it."""
    found: dict[str, set[str]] = {}
    files = [ROOT / "manage.py"] + [f for d in SCANNED for f in (ROOT / d).rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in OURS:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def direct_pins() -> set[str]:
    return {package for name in REQUIREMENTS for package in pins(ROOT / name)}


def test_the_scan_sees_the_imports_it_must_see():
    imported = imported_top_levels()

    assert {"django", "langchain", "langchain_core", "pydantic", "kombu"} <= set(imported)
    assert "json" not in imported  # the standard library
    assert "exercises" not in imported  # ours


def test_every_package_our_code_imports_is_a_direct_requirement():
    # A package that only arrives as another one's dependency can change or vanish with it.
    distributions = metadata.packages_distributions()
    direct = direct_pins()
    missing = {}
    for top, files in imported_top_levels().items():
        candidates = {canonical(name) for name in distributions.get(top, [])}
        # A namespace package (google.*) is provided by several distributions: one pinned is enough.
        if not candidates & direct:
            missing[top] = (sorted(candidates) or ["not installed"], sorted(files)[:3])

    assert missing == {}


def requirement_closure() -> set[str]:
    """Every distribution the requirements files need on this platform, following each installed
    distribution's metadata (extras included)."""
    todo: list[tuple[str, frozenset[str]]] = []
    for name in REQUIREMENTS:
        for line in (ROOT / name).read_text().splitlines():
            line = line.partition("#")[0].strip()
            if line and not line.startswith("-r "):
                requirement = Requirement(line)
                todo.append((canonical(requirement.name), frozenset(requirement.extras)))
    seen: dict[str, frozenset[str]] = {}
    while todo:
        name, extras = todo.pop()
        if name in seen and extras <= seen[name]:
            continue
        seen[name] = seen.get(name, frozenset()) | extras
        for text in metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((canonical(requirement.name), frozenset(requirement.extras)))
    return set(seen)


def test_the_lock_file_is_exactly_the_transitive_set_of_the_requirements():
    # Missing: a fresh install would resolve it freely. Extra: a stale pin `make lock` would drop.
    constraints = set(pins(ROOT / "constraints.txt"))
    closure = requirement_closure()

    assert closure - constraints == set(), "not locked: run make lock"
    assert constraints - closure == set(), "locked but needed by nothing: run make lock"


def test_every_install_applies_the_lock_file():
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    script = (ROOT / "ops" / "language-packages.sh").read_text()
    installs = re.findall(
        r"^.*pip\"? install.* -r requirements.*$", makefile + dockerfile + script, re.M
    )
    # `make lock` alone resolves afresh (into .venv-lock/), to write the lock file.
    installs = [line for line in installs if ".venv-lock" not in line]

    assert len(installs) == 6
    assert all("-c constraints.txt" in line for line in installs), installs
