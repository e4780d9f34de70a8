"""docs/ against the code: the configuration page against what the settings read, the API page
against the generated OpenAPI document and the error codes in the code, and the repository
against references to anything outside it."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.settings_env import settings_variables, variables_read

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def markdown_section(text: str, heading: str) -> str:
    """The body under the heading line `heading`, up to the next heading of that level or higher."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next(
        (
            number
            for number in range(start, len(lines))
            if re.match(rf"#{{1,{level}}} ", lines[number])
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


SEPARATOR = re.compile(r"\|[-| :]+\|$")


def table_rows(text: str) -> Iterator[list[str]]:
    """The cells of every body row of the tables in `text` (no header or separator rows)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        header = number + 1 < len(lines) and SEPARATOR.match(lines[number + 1])
        if line.startswith("|") and not SEPARATOR.match(line) and not header:
            yield [cell.strip() for cell in line.strip("|").split("|")]


def first_cell_names(text: str) -> list[str]:
    return [name for cells in table_rows(text) for name in VARIABLE.findall(cells[0])]


# --- configuration ------------------------------------------------------------------------------

CONFIGURATION = ROOT / "docs/configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"
SUBSECTION = re.compile(r"^### (3\.\d+) (.+)$", re.MULTILINE)
ENV_SECTION = re.compile(r"^# --- (3\.\d+) (.+?) -+$", re.MULTILINE)


def configuration_sections() -> dict[str, tuple[str, list[str]]]:
    """`3.N` -> (title, variables in its tables) of docs/configuration.md."""
    text = read(CONFIGURATION)
    return {
        number: (title, first_cell_names(markdown_section(text, f"### {number} {title}")))
        for number, title in SUBSECTION.findall(text)
    }


def outside_variables() -> list[str]:
    return first_cell_names(
        markdown_section(read(CONFIGURATION), "## 5. Read outside the settings")
    )


def env_example_sections() -> dict[str, tuple[str, str]]:
    """`3.N` -> (title, text of that section) of .env.example."""
    text = read(ENV_EXAMPLE)
    headings = list(ENV_SECTION.finditer(text))
    sections: dict[str, tuple[str, str]] = {}
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        sections[heading.group(1)] = (heading.group(2), text[heading.end() : end])
    return sections


def test_the_scan_finds_every_way_the_settings_read_a_variable():
    found = variables_read(
        "import os\n"
        "A = env.str('A_STR', default='')\n"
        "B = env.bool(_aliased('B_NEW', 'B_OLD'), default=False)\n"
        "C = _seconds('C_DURATION', 'PT3H')\n"
        "D = _json(_aliased('D_JSON', 'D_PREVIOUS'), {}, dict)\n"
        "E = os.environ.get('E_OS', '')\n"
        "F = os.environ['F_OS']\n"
        "G = env.list('G_LIST', default=[])\n"
        "H = os.environ.get('RUN_MAIN')\n"
        "I = env.int(NAME)\n"
        "def _seconds(name, default):\n"
        "    return env.str(name, default=default)\n"
    )

    assert found.names == {"A_STR", "B_NEW", "C_DURATION", "D_JSON", "E_OS", "F_OS", "G_LIST"}
    assert found.aliases == {"B_OLD": "B_NEW", "D_PREVIOUS": "D_JSON"}
    assert found.unresolved == ["<source>:10"]


def test_the_settings_read_only_literal_names():
    found = settings_variables()

    assert found.unresolved == []
    assert len(found.names) > 100
    assert {"DATABASE_URL", "DJANGO_DEBUG", "REDIS_URL", "LONG_BREAK_REMINDER_INTERVALS"} <= (
        found.names
    )
    assert found.aliases["DEBUG"] == "DJANGO_DEBUG"


def test_the_configuration_page_documents_every_variable_the_settings_read():
    documented = {name for _, names in configuration_sections().values() for name in names}

    assert sorted(settings_variables().names - documented) == []


def test_the_configuration_page_names_only_variables_something_reads():
    found = settings_variables()
    outside = set(outside_variables())
    names = first_cell_names(read(CONFIGURATION))
    rows = [name for _, names in configuration_sections().values() for name in names]

    assert sorted(set(names) - found.names - set(found.aliases) - outside) == []
    assert sorted(outside & found.names) == []  # those belong in section 3
    assert len(rows) == len(set(rows)), "a variable has two rows"


def test_the_previous_names_are_documented_with_their_new_ones():
    section = markdown_section(read(CONFIGURATION), "## 4. Previous names")
    documented = {
        VARIABLE.findall(cells[0])[0]: VARIABLE.findall(cells[1])[0]
        for cells in table_rows(section)
    }

    assert documented == settings_variables().aliases
    env_example = read(ENV_EXAMPLE)
    for previous in documented:
        assert f"alias: {previous}" in env_example, previous


def test_env_example_and_the_configuration_page_group_variables_alike():
    documented = configuration_sections()
    env_sections = env_example_sections()

    assert {number: title for number, (title, _) in documented.items()} == {
        number: title for number, (title, _) in env_sections.items()
    }
    misplaced = [
        f"{name}: docs {number}"
        for number, (_, names) in documented.items()
        for name in names
        if not re.search(rf"^(# )?{name}=", env_sections[number][1], re.MULTILINE)
    ]
    assert misplaced == []


def test_variables_read_outside_the_settings_are_in_env_example():
    text = read(ENV_EXAMPLE)
    names = outside_variables()

    assert len(names) >= 5
    assert [name for name in names if not re.search(rf"^(# )?{name}=", text, re.MULTILINE)] == []


def test_the_readme_configuration_table_names_real_variables():
    section = markdown_section(read(ROOT / "README.md"), "## Configuration")
    names = first_cell_names(section)
    found = settings_variables()

    assert len(names) > 20
    assert sorted(set(names) - found.names) == []
    assert "docs/configuration.md" in section


# --- the bot API --------------------------------------------------------------------------------

API = ROOT / "docs/api.md"
OPERATION_HEADING = re.compile(r"^#### (GET|PUT|POST|PATCH|DELETE) `(/[^`]*)`$", re.MULTILINE)
#: Codes every operation can answer; the page says so once instead of per endpoint.
COMMON_CODES = frozenset(
    {
        "not_authenticated",
        "authentication_failed",
        "method_not_allowed",
        "validation_error",
        "internal_error",
        "service_unavailable",
        "request_too_large",
    }
)
APP_PACKAGES = ("duoniche", "learning", "exercises", "payments", "notifications")
#: Helpers that answer an error from `(detail, code, ...)`.
ERROR_WRITERS = frozenset({"_respond", "_json_error", "error_body"})


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _enum_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield from (value for value in node["enum"] if isinstance(value, str))
        for value in node.values():
            yield from _enum_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enum_values(value)


def schema_error_codes(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, set[str]]]:
    """(METHOD, path) -> {code: statuses} of every error response of the document."""
    result: dict[tuple[str, str], dict[str, set[str]]] = {}
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            codes: dict[str, set[str]] = {}
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    for code in _enum_values(response.get("content", {})):
                        codes.setdefault(code, set()).add(status)
            result[(method.upper(), path)] = codes
    return result


def code_error_codes() -> set[str]:
    """Every error `code` written in the application code: `code="..."` arguments (Django's form
    and model `ValidationError` codes excepted), the error writers' second argument, and literal
    `{"detail": ..., "code": "..."}` bodies."""
    codes: set[str] = set()
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(read(path))):
                if isinstance(node, ast.Call):
                    func = node.func
                    callee = getattr(func, "id", None) or getattr(func, "attr", None)
                    if callee != "ValidationError":
                        codes.update(
                            keyword.value.value
                            for keyword in node.keywords
                            if keyword.arg == "code"
                            and isinstance(keyword.value, ast.Constant)
                            and isinstance(keyword.value.value, str)
                        )
                    if callee in ERROR_WRITERS and len(node.args) >= 2:
                        second = node.args[1]
                        if isinstance(second, ast.Constant) and isinstance(second.value, str):
                            codes.add(second.value)
                elif isinstance(node, ast.Dict):
                    body = {
                        key.value: value
                        for key, value in zip(node.keys, node.values, strict=True)
                        if isinstance(key, ast.Constant)
                    }
                    code = body.get("code")
                    if "detail" in body and isinstance(code, ast.Constant):
                        codes.add(str(code.value))
    return codes


@cache
def documented_codes() -> dict[str, str]:
    """code -> its status cell, from the tables of the page's Errors section."""
    section = markdown_section(read(API), "## Errors")
    return {
        match.group(1): cells[1]
        for cells in table_rows(section)
        if (match := re.fullmatch(r"`([a-z_]+)`", cells[0]))
    }


def operation_sections() -> dict[tuple[str, str], str]:
    text = read(API)
    headings = list(OPERATION_HEADING.finditer(text))
    sections = {}
    for heading in headings:
        following = re.compile(r"^#{1,4} ", re.MULTILINE).search(text, heading.end())
        end = following.start() if following else len(text)
        sections[(heading.group(1), heading.group(2))] = " ".join(text[heading.end() : end].split())
    return sections


def test_the_code_scan_finds_error_codes_of_every_kind():
    codes = code_error_codes()

    assert {
        "user_not_found",  # a helper building an ApplicationError
        "invalid_payload_signature",  # an ApplicationError subclass
        "refund_failed",  # a subclass setting its own code
        "bad_request",  # an error page outside the API views
        "service_unavailable",  # a literal body (/healthz)
        "validation_error",
    } <= codes
    assert "invalid" not in codes  # a form's ValidationError, not an API code


def test_every_operation_of_the_schema_has_its_section(openapi):
    operations = set(schema_error_codes(openapi))
    documented = set(operation_sections())

    assert len(operations) >= 14
    assert sorted(operations - documented) == []
    assert sorted(documented - operations) == []


def test_every_path_of_the_schema_is_on_the_page(openapi):
    text = read(API)

    assert [path for path in openapi["paths"] if f"`{path}`" not in text] == []


def test_each_operation_section_names_its_own_errors_with_their_status(openapi):
    sections = operation_sections()
    missing = [
        f"{method} {path}: {status} {code}"
        for (method, path), codes in schema_error_codes(openapi).items()
        for code, statuses in codes.items()
        if code not in COMMON_CODES
        for status in statuses
        if f"{status} `{code}`" not in sections.get((method, path), "")
    ]

    assert missing == []


def test_the_error_table_has_every_code_and_only_real_ones(openapi):
    in_schema = {code for codes in schema_error_codes(openapi).values() for code in codes}
    in_code = code_error_codes()
    documented = documented_codes()

    assert in_schema <= in_code  # the document declares nothing the code cannot answer
    assert sorted(in_code - set(documented)) == []
    assert sorted(set(documented) - in_code) == []


def test_the_error_table_gives_every_status_the_schema_declares(openapi):
    documented = documented_codes()
    wrong = [
        f"{code}: {status} not in {documented[code]!r}"
        for codes in schema_error_codes(openapi).values()
        for code, statuses in codes.items()
        for status in statuses
        if status not in re.findall(r"\d{3}", documented[code])
    ]

    assert wrong == []


def test_the_api_page_points_at_the_live_schema():
    text = read(API)

    assert "/api/schema/" in text
    assert "/api/docs/" in text


# --- links between pages ------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in read(path).splitlines() if line.startswith("#")}


def test_the_slug_is_githubs():
    assert slug(" 3.6 TTS") == "36-tts"
    assert slug(" Payments (Telegram Stars)") == "payments-telegram-stars"
    assert slug(" `refill_stock`") == "refill_stock"


def test_links_between_the_pages_resolve():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(read(page)):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.is_file():
                broken.append(f"{page.name}: {target}")
            elif anchor and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")

    assert len(pages) >= 7
    assert broken == []


# --- the repository stands alone ----------------------------------------------------------------

#: What points outside the repository: the spec a clone does not have, its section signs, its
#: numbered fixes and weaknesses. Written so that these lines do not match themselves.
OUTSIDE_REFERENCES = re.compile(
    r"\.\./share[d]|share[d]/spec|share[d] (spec|[\w-]+\.md)|\u00a7"
    r"|\bFi[x] \d+|\bweaknes[s](es)? ?#?\d",
    re.IGNORECASE,
)
#: A file name ending in .md, not part of a URL or a longer path.
MARKDOWN_FILE = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.md)\b")


@cache
def tracked_files() -> tuple[Path, ...]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return tuple(
        ROOT / name
        for name in listed.split("\0")
        if name and not (name.startswith("locale/") and name.endswith(".mo"))
    )


def tracked_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def test_the_outside_pattern_catches_what_it_should():
    # Each example is cut in two, so that this file does not match itself.
    for text in (
        "see ../sha" + "red/spec/config." + "md",
        "(sha" + "red jobs." + "md \u00a73.1)",
        "Sha" + "red spec",
        "the lock (Fi" + "x 11)",
        "weak" + "nesses #17",
        "weak" + "ness 34",
    ):
        assert OUTSIDE_REFERENCES.search(text), text
    for text in ("docs/jobs.md", "shared_task", "a shared cache", "Fix: the old 307"):
        assert not OUTSIDE_REFERENCES.search(text), text


def test_no_tracked_file_refers_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in tracked_files()
        for number, line in enumerate(tracked_text(path).splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]

    assert len(tracked_files()) > 100
    assert offenders == []


def test_every_markdown_file_a_tracked_file_names_exists():
    tracked = set(tracked_files())
    missing = [
        f"{path.relative_to(ROOT)}:{number}: {name}"
        for path in tracked
        for number, line in enumerate(tracked_text(path).splitlines(), 1)
        for name in MARKDOWN_FILE.findall(line)
        if (path.parent / name).resolve() not in tracked and (ROOT / name).resolve() not in tracked
    ]

    assert missing == []
