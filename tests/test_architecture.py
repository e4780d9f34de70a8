"""The house rules a reviewer would otherwise have to remember, read off the code's syntax trees.

* **One write path per model**: every model of ours is written (ORM create/update/delete/save, a
  related manager's writes, hand-written INSERT/UPDATE/DELETE) only by the service module named
  for it in WRITE_PATHS. Other apps, jobs, commands and the admin call that module.
* **Imports run downward**: payments, notifications -> learning -> exercises -> duoniche, with no
  import cycle between modules (imports inside functions count too), and no selectors module
  importing a services module. `duoniche` names no app, not even as a dotted-path string; the
  project wiring (settings, the root URLconf, Celery's app) is the exception.

The checks read source, not behaviour: `tests/test_architecture.py::test_*_catches_*` feed them
deliberate violations so that a check that cannot fail would show.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models

ROOT = Path(__file__).resolve().parents[1]
#: Apps from the bottom floor up; an app may import only apps on a lower floor (or its own).
FLOORS = {"duoniche": 0, "exercises": 1, "learning": 2, "notifications": 3, "payments": 3}
#: Project wiring: the modules that must name every app (INSTALLED_APPS, the root URLconf).
WIRING = {"duoniche/settings.py", "duoniche/settings_test.py", "duoniche/urls.py"}

#: The one module that writes each model (label -> path). Every model of ours must be listed.
WRITE_PATHS: dict[str, str] = {
    "duoniche.LLMCall": "duoniche/llm.py",
    "duoniche.JobLock": "duoniche/job_runs.py",
    "duoniche.JobRun": "duoniche/job_runs.py",
    "exercises.Exercise": "exercises/services.py",
    "exercises.ExerciseAnswer": "exercises/verdicts.py",
    "exercises.ExerciseReview": "exercises/services.py",
    "learning.TelegramUser": "learning/users.py",
    "learning.BotProfile": "learning/profiles.py",
    "learning.ExerciseAttempt": "learning/validation.py",
    "learning.WeeklyReport": "learning/report_services.py",
    "learning.ReviewCard": "learning/review_cards.py",
    "learning.LevelChange": "learning/profiles.py",
    "payments.Payment": "payments/services.py",
    "notifications.NotificationLog": "notifications/producer.py",
    # A library's model that our code writes: staff's authenticator devices (django-otp).
    "otp_totp.TOTPDevice": "duoniche/two_factor.py",
}

WRITE_METHODS = {
    "create",
    "bulk_create",
    "bulk_update",
    "update",
    "delete",
    "get_or_create",
    "update_or_create",
    "add",
    "remove",
    "set",
    "clear",
}
INSTANCE_WRITES = {"save", "delete"}
MANAGERS = {"objects", "_default_manager", "_base_manager"}
#: Calls that keep a queryset a queryset of the same model.
QS_METHODS = {"all", "filter", "exclude", "select_for_update", "order_by", "using", "only", "defer"}
#: Writes that only a related manager has (`set.add` and `list.remove` are not writes).
RELATION_ONLY = {"add", "remove", "set", "clear"}
#: Receivers of `.save()` that are not model instances (file storages).
NOT_MODELS = re.compile(r"(^|_)storage$")
#: A write keyword ending a literal part of an f-string: the formatted table after it is written.
SQL_WRITE_END = re.compile(r"(?<!FOR )(?<!KEY )\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+$", re.I)
#: A write keyword and the literal table name after it.
SQL_WRITE_TABLE = re.compile(
    r"(?<!FOR )(?<!KEY )\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+\"?(?P<table>\w+)", re.I
)
#: duoniche.rows helpers that write the model instance given as their first argument.
ROW_WRITERS = {"insert_statement", "update_row"}


def source_files(apps: Iterable[str] = FLOORS) -> Iterator[Path]:
    for app in apps:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: str) -> str:
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def our_models() -> dict[str, type[models.Model]]:
    return {
        model.__name__: model
        for model in django_apps.get_models()
        if model._meta.app_label in FLOORS or model._meta.label in WRITE_PATHS
    }


def reverse_accessors(by_name: dict[str, type[models.Model]]) -> dict[str, str]:
    """Related-manager attribute names (`exercise.reviews`) -> the label of the model they write."""
    accessors = {}
    for model in by_name.values():
        for relation in model._meta.get_fields():
            if relation.auto_created and not relation.concrete and relation.related_model:
                target = relation.related_model
                if target._meta.app_label in FLOORS:
                    accessors[relation.get_accessor_name()] = target._meta.label
    return accessors


# --- writes ---------------------------------------------------------------------------------------


@dataclass
class Writes:
    """What one module writes: model labels, and saves whose model the tree does not tell."""

    models: dict[str, int] = field(default_factory=dict)
    unknown_saves: list[int] = field(default_factory=list)


def chain_root(node: ast.AST) -> tuple[ast.AST, list[str]]:
    """`a.b(x).c.d` -> (`a`, ["b", "c", "d"]): the name a chain starts from, and its attributes."""
    attributes: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            attributes.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get_model":
                return node, attributes[::-1]  # apps.get_model("app", "Model") stands for a model
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node, attributes[::-1]


class WriteFinder(ast.NodeVisitor):
    def __init__(self, by_name: dict[str, type[models.Model]], accessors: dict[str, str]):
        self.by_name = by_name
        self.accessors = accessors
        self.bound: dict[str, str] = {}  # a local name -> the label of the model it stands for
        self.querysets: dict[str, str] = {}  # a name assigned a queryset/instance of a model
        self.tables = {model._meta.db_table: model._meta.label for model in by_name.values()}
        self.table_names: dict[str, str] = {}  # a name assigned `Model._meta.db_table`
        self.writes = Writes()

    # Which names stand for which models.
    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name in self.by_name and (node.module or "").endswith("models"):
                self.bound[alias.asname or alias.name] = self.by_name[alias.name]._meta.label

    def _label_of(self, node: ast.AST) -> str | None:
        """The model a chain starts from: `Model`, `models.Model`, `apps.get_model("a", "M")`."""
        if isinstance(node, ast.Name):
            return self.bound.get(node.id) or self.querysets.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in self.by_name:
            return self.by_name[node.attr]._meta.label
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_model"
            and node.args
            and isinstance(node.args[-1], ast.Constant)
        ):
            name = str(node.args[-1].value).rsplit(".", 1)[-1]
            model = self.by_name.get(name)
            return model._meta.label if model else None
        return None

    def _model_of_expression(self, node: ast.AST) -> str | None:
        """`Model.objects...`, `Model(...)` or a name already known: the model, else None."""
        if isinstance(node, ast.Call) and self._label_of(node.func):
            return self._label_of(node.func)  # Model(...) or apps.get_model(...)
        root, attributes = chain_root(node)
        label = self._label_of(root)
        if label and (set(attributes) & MANAGERS or isinstance(root, ast.Name)):
            return label
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        label = self._model_of_expression(node.value)
        table = self._table_label(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name) and label:
                self.querysets[target.id] = label
            if isinstance(target, ast.Name) and table:
                self.table_names[target.id] = table
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotated(node.target, node.annotation)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._annotated(node, node.annotation)

    def _annotated(self, target: ast.AST, annotation: ast.AST | None) -> None:
        name = target.arg if isinstance(target, ast.arg) else getattr(target, "id", None)
        if name is None or annotation is None:
            return
        text = ast.unparse(annotation).strip("'\"")
        model = self.by_name.get(text.rsplit(".", 1)[-1].removesuffix(" | None"))
        if model is not None:
            self.querysets[name] = model._meta.label

    # What they write.
    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            self._call(node, node.func.attr, node.func.value)
        function = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if function in ROW_WRITERS and node.args:
            label = self._model_of_expression(node.args[0])
            if label:
                self._write(label, node)
            else:
                self.writes.unknown_saves.append(node.lineno)
        self.generic_visit(node)

    def _call(self, node: ast.Call, method: str, receiver: ast.AST) -> None:
        root, attributes = chain_root(receiver)
        name = root.id if isinstance(root, ast.Name) else ""
        if method in WRITE_METHODS:
            # A related manager: `exercise.reviews.create(...)`, `user.profiles.filter().update()`.
            for position, attribute in enumerate(attributes):
                if attribute in self.accessors and set(attributes[position + 1 :]) <= QS_METHODS:
                    self._write(self.accessors[attribute], node)
        if method in WRITE_METHODS - RELATION_ONLY:
            label = self._label_of(root)
            if name in self.bound or not isinstance(root, ast.Name):
                # `Model.objects.filter(...).update(...)`, `apps.get_model(...).objects.create()`
                if label and attributes and attributes[0] in MANAGERS:
                    self._write(label, node)
            elif label and set(attributes) <= QS_METHODS:
                self._write(label, node)  # `rows.delete()`, `rows.filter(...).update(...)`
        uncommitted = any(
            keyword.arg == "commit" and getattr(keyword.value, "value", True) is False
            for keyword in node.keywords
        )  # `form.save(commit=False)` builds objects, it writes nothing
        if method in INSTANCE_WRITES and not attributes and not node.args and not uncommitted:
            label = self.querysets.get(name)
            if label:
                self._write(label, node)
            elif not NOT_MODELS.search(name):
                self.writes.unknown_saves.append(node.lineno)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """`f"UPDATE {Model._meta.db_table} ..."`: the table right after the keyword is written."""
        for before, after in zip(node.values, node.values[1:], strict=False):
            if (
                isinstance(before, ast.Constant)
                and SQL_WRITE_END.search(str(before.value))
                and isinstance(after, ast.FormattedValue)
            ):
                label = self._table_label(after.value)
                if label:
                    self._write(label, node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for match in SQL_WRITE_TABLE.finditer(node.value):
                label = self.tables.get(match.group("table"))
                if label:
                    self._write(label, node)

    def _table_label(self, node: ast.AST) -> str | None:
        """`Model._meta.db_table`, or a name assigned it: the model's label."""
        if isinstance(node, ast.Name):
            return self.table_names.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr == "db_table":
            meta = node.value
            if isinstance(meta, ast.Attribute) and meta.attr == "_meta":
                return self._label_of(meta.value)
        return None

    def _write(self, label: str, node: ast.AST) -> None:
        self.writes.models.setdefault(label, getattr(node, "lineno", 0))

    def finish(self) -> Writes:
        return self.writes


def module_writes(source: str) -> Writes:
    by_name = our_models()
    finder = WriteFinder(by_name, reverse_accessors(by_name))
    finder.visit(ast.parse(source))
    return finder.finish()


def write_path_violations(files: dict[str, str]) -> list[str]:
    """`path:line writes Label` for every write outside the model's own service module."""
    owners = set(WRITE_PATHS.values())
    problems = []
    for path, source in files.items():
        writes = module_writes(source)
        for label, line in sorted(writes.models.items()):
            if WRITE_PATHS.get(label) != path:
                problems.append(
                    f"{path}:{line} writes {label} (its write path: "
                    f"{WRITE_PATHS.get(label, 'none listed')})"
                )
        if path not in owners:
            problems.extend(
                f"{path}:{line} saves or deletes a model instance outside a service module"
                for line in writes.unknown_saves
            )
    return problems


def tree_sources() -> dict[str, str]:
    return {relative(path): path.read_text(encoding="utf-8") for path in source_files()}


# --- imports --------------------------------------------------------------------------------------


def imported_modules(path: str, source: str) -> set[str]:
    """The modules of ours `path` imports, at any depth of the file (functions included)."""
    package = (
        module_name(path).rsplit(".", 1)[0]
        if not path.endswith("__init__.py")
        else (module_name(path))
    )
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # `from pkg import name`: the module `pkg.name`, or `pkg` when `name` is not a module
            # (resolve() falls back). The package's own __init__ running first is not a design
            # dependency: every module of a package has it.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".", 1)[0] in FLOORS}


def known_modules(paths: Iterable[str]) -> set[str]:
    return {module_name(path) for path in paths}


def resolve(name: str, modules: set[str]) -> str | None:
    """The module an imported name lives in: `a.b.c` is module `a.b.c`, or a name of `a.b`."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(files: dict[str, str]) -> dict[str, set[str]]:
    modules = known_modules(files)
    graph: dict[str, set[str]] = defaultdict(set)
    for path, source in files.items():
        here = module_name(path)
        for name in imported_modules(path, source):
            target = resolve(name, modules)
            if target and target != here:
                graph[here].add(target)
    return graph


def upward_imports(files: dict[str, str]) -> list[str]:
    problems = []
    for here, targets in sorted(import_graph(files).items()):
        app = here.split(".", 1)[0]
        for target in sorted(targets):
            other = target.split(".", 1)[0]
            if other != app and FLOORS[other] >= FLOORS[app]:
                problems.append(f"{here} imports {target}")
            if "selectors" in here.rsplit(".", 1)[-1] and "services" in target.rsplit(".", 1)[-1]:
                problems.append(f"{here} (a selectors module) imports {target}")
    return problems


def models_looked_up_upward(files: dict[str, str]) -> list[str]:
    """`apps.get_model("learning", ...)` in a lower app: an import by another name."""
    problems = []
    for path, source in files.items():
        app = path.split("/", 1)[0]
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_model"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                other = str(node.args[0].value).split(".", 1)[0]
                if other in FLOORS and other != app and FLOORS[other] >= FLOORS[app]:
                    problems.append(f"{path}:{node.lineno} looks up a model of {other}")
    return problems


def dotted_app_names(files: dict[str, str]) -> list[str]:
    """String constants in duoniche that name a module of a higher app (`"exercises.refill.x"`)."""
    modules = known_modules(files)
    problems = []
    for path, source in files.items():
        if not path.startswith("duoniche/") or path in WIRING:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                if value.split(".", 1)[0] in FLOORS and value.split(".", 1)[0] != "duoniche":
                    target = resolve(value, modules)
                    if target and target.count(".") >= 1:
                        problems.append(f"{path}:{node.lineno} names {value}")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# --- the rules ------------------------------------------------------------------------------------


def test_every_model_of_ours_has_one_write_path():
    labels = {model._meta.label for model in our_models().values()}
    assert labels == set(WRITE_PATHS)
    assert all((ROOT / path).exists() for path in WRITE_PATHS.values())


def test_only_its_service_module_writes_a_model():
    assert write_path_violations(tree_sources()) == []


def test_imports_run_downward_and_selectors_never_import_services():
    assert upward_imports(tree_sources()) == []
    assert models_looked_up_upward(tree_sources()) == []


def test_duoniche_names_no_app_module():
    assert dotted_app_names(tree_sources()) == []


def test_no_module_imports_itself_back():
    assert cycles(import_graph(tree_sources())) == []


def test_the_admin_saves_through_services(rf):
    """Every admin of our models that may change, add or delete overrides the raw saves."""
    request = rf.get("/admin/")
    request.user = User(is_active=True, is_staff=True, is_superuser=True)
    raw = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in FLOORS and model._meta.label not in WRITE_PATHS:
            continue
        kind = type(model_admin)
        needed = []
        if model_admin.has_change_permission(request) or model_admin.has_add_permission(request):
            needed.append("save_model")
            if any(
                inline.has_change_permission(request) or inline.has_add_permission(request, None)
                for inline in model_admin.get_inline_instances(request)
            ):
                needed.append("save_formset")
        if model_admin.has_delete_permission(request):
            needed += ["delete_model", "delete_queryset"]
        raw.extend(
            f"{kind.__name__}.{name}"
            for name in needed
            if getattr(kind, name) is getattr(admin.ModelAdmin, name)
        )
    assert raw == []


# --- the checks catch what they should -----------------------------------------------------------

VIOLATIONS = {
    "orm update": "from learning.models import BotProfile\n"
    "def f(pk):\n    BotProfile.objects.filter(pk=pk).update(rating=1)\n",
    "queryset variable": "from learning.models import BotProfile\n"
    "def f(pk):\n    rows = BotProfile.objects.filter(pk=pk)\n    rows.delete()\n",
    "annotated save": "from learning.models import BotProfile\n"
    "def f(profile: BotProfile):\n    profile.rating = 1\n    profile.save()\n",
    "related manager": "def f(exercise):\n    exercise.reviews.create(note='x')\n",
    "raw sql": "from learning.models import BotProfile\n"
    "SQL = f'UPDATE {BotProfile._meta.db_table} SET rating = 1'\n",
    "raw sql through a name": "from learning.models import BotProfile\n"
    "def f():\n    table = BotProfile._meta.db_table\n"
    "    return f'UPDATE {table} AS p SET rating = 1'\n",
    "literal table": "SQL = 'DELETE FROM learning_botprofile WHERE id = %s'\n",
    "row writer": "from duoniche.rows import insert_statement\n"
    "from learning.models import BotProfile\n"
    "def f():\n    row = BotProfile(rating=1)\n    return insert_statement(row)\n",
    "get_model": "from django.apps import apps\n"
    "def f():\n    apps.get_model('learning', 'BotProfile').objects.create()\n",
    "a library's model we own": "from django_otp.plugins.otp_totp.models import TOTPDevice\n"
    "def f(user):\n    TOTPDevice.objects.filter(user=user).delete()\n",
}


@pytest.mark.parametrize("case", VIOLATIONS)
def test_the_write_check_catches_a_write_outside_the_owner(case):
    problems = write_path_violations({"notifications/example.py": VIOLATIONS[case]})

    assert problems, case
    assert all("notifications/example.py" in problem for problem in problems)


def test_the_write_check_lets_the_owner_write_and_others_read():
    owner = WRITE_PATHS["learning.BotProfile"]
    reads = (
        "from learning.models import BotProfile\n"
        "def f(pk):\n    return list(BotProfile.objects.filter(pk=pk).values('rating'))\n"
        "LOCK = f'SELECT id FROM {BotProfile._meta.db_table} WHERE id = %s FOR UPDATE'\n"
        "SHARE = f'SELECT 1 FROM {BotProfile._meta.db_table} FOR NO KEY UPDATE'\n"
    )

    assert write_path_violations({owner: VIOLATIONS["orm update"]}) == []
    assert write_path_violations({"notifications/example.py": reads}) == []


def test_an_unknown_instance_save_outside_a_service_module_is_caught():
    source = "def f(thing):\n    thing.save()\n"
    storage = "def f(default_storage, name, body):\n    default_storage.save(name, body)\n"

    assert write_path_violations({"learning/admin.py": source})
    assert write_path_violations({"learning/admin.py": storage}) == []


def test_the_import_checks_catch_upward_imports_cycles_and_dotted_names():
    files = {
        "exercises/models.py": "",
        "exercises/selectors.py": "from exercises import services\n",
        "exercises/services.py": "def f():\n    from learning.models import BotProfile\n",
        "learning/models.py": "",
        "learning/a.py": "from . import b\n",
        "learning/b.py": "from learning.a import x\n",
        "duoniche/jobs.py": "BODY = 'exercises.services.f'\n",
        "exercises/weights.py": "from django.apps import apps\n"
        "PROFILE = apps.get_model('learning', 'BotProfile')\n",
    }

    assert upward_imports(files) == [
        "exercises.selectors (a selectors module) imports exercises.services",
        "exercises.services imports learning.models",
    ]
    assert cycles(import_graph(files)) == [["learning.a", "learning.b"]]
    assert dotted_app_names(files) == ["duoniche/jobs.py:1 names exercises.services.f"]
    assert models_looked_up_upward(files) == ["exercises/weights.py:2 looks up a model of learning"]
