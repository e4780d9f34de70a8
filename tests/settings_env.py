"""The environment variables `duoniche/settings.py` reads, found in its source.

The settings are parsed, not imported: importing them reads the environment of the test process
and would not say which names were asked for. Every way the settings read a variable is
recognised: `env.<type>("NAME", ...)`, the helpers `_seconds("NAME", ...)` and `_json("NAME", ...)`,
`_aliased("NAME", "PREVIOUS_NAME")` (also as the name argument of the others), and
`os.environ.get("NAME")` / `os.environ["NAME"]` / `os.getenv("NAME")`. A read whose name is not
a literal is reported as unresolved, so that a variable cannot slip past the documentation checks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "duoniche" / "settings.py"

#: django-environ's typed readers (`env.str(...)`, `env.bool(...)`, ...).
ENV_READERS = frozenset(
    {
        "str",
        "bool",
        "int",
        "float",
        "decimal",
        "list",
        "tuple",
        "dict",
        "json",
        "url",
        "path",
        "db_url",
        "db",
        "cache_url",
        "cache",
        "email_url",
        "search_url",
        "get_value",
    }
)
#: The settings' own helpers; the first argument is the variable's name.
HELPERS = frozenset({"_seconds", "_json", "_aliased"})
#: Names the settings look at that are not configuration.
NOT_CONFIGURATION = {"RUN_MAIN": "set by runserver's autoreloader in its child process"}


@dataclass
class SettingsVariables:
    names: set[str] = field(default_factory=set)
    #: previous name -> the name it stands for
    aliases: dict[str, str] = field(default_factory=dict)
    #: `file:line` of reads whose variable name is not a literal
    unresolved: list[str] = field(default_factory=list)


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_environ(node: ast.expr) -> bool:
    """`os.environ` or `environ` (imported from os)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _name_argument(call: ast.Call) -> ast.expr | None:
    """The expression naming the variable, or None when `call` reads no variable."""
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "env" and func.attr in ENV_READERS:
            return call.args[0] if call.args else None
        if _is_environ(owner) and func.attr == "get":
            return call.args[0] if call.args else None
        if isinstance(owner, ast.Name) and owner.id == "os" and func.attr == "getenv":
            return call.args[0] if call.args else None
    if isinstance(func, ast.Name) and (func.id in HELPERS or func.id == "env"):
        return call.args[0] if call.args else None
    return None


class _Collector(ast.NodeVisitor):
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.found = SettingsVariables()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        # Inside the helpers the name is their parameter; their callers are what counts.
        if node.name not in HELPERS:
            self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            self._record(node.slice, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _name_argument(node)
        if name is not None:
            if isinstance(name, ast.Call) and isinstance(name.func, ast.Name):
                if name.func.id != "_aliased":
                    self._unresolved(node)
                # An `_aliased(...)` argument is recorded when it is visited.
            else:
                self._record(name, node)
        if isinstance(node.func, ast.Name) and node.func.id == "_aliased" and len(node.args) == 2:
            new, previous = (_literal(arg) for arg in node.args)
            if new is not None and previous is not None:
                self.found.aliases[previous] = new
            else:
                self._unresolved(node)
        self.generic_visit(node)

    def _record(self, name: ast.expr, node: ast.AST) -> None:
        value = _literal(name)
        if value is None:
            self._unresolved(node)
        elif value not in NOT_CONFIGURATION:
            self.found.names.add(value)

    def _unresolved(self, node: ast.AST) -> None:
        self.found.unresolved.append(f"{self.filename}:{getattr(node, 'lineno', '?')}")


def variables_read(source: str, filename: str = "<source>") -> SettingsVariables:
    collector = _Collector(filename)
    collector.visit(ast.parse(source, filename))
    return collector.found


def settings_variables() -> SettingsVariables:
    """What `duoniche/settings.py` reads."""
    return variables_read(SETTINGS.read_text(encoding="utf-8"), "duoniche/settings.py")
