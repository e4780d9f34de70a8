"""Repository-wide rules that a reviewer would otherwise have to remember."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("duoniche", "exercises", "learning", "payments", "notifications", "bench")
# SQL built by formatting right inside execute()/raw(): f-strings, %-formatting or .format().
FORMATTED_SQL = re.compile(
    r"""\.(execute|raw|executemany)\(\s*(f["']|["'][^"']*["']\s*%\s|["'][^"']*["']\.format\()"""
)


def source_files():
    for app in APPS:
        yield from (path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts)


def test_the_scan_sees_the_code():
    assert len(list(source_files())) > 40


def test_no_sql_is_built_by_string_formatting():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in source_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORMATTED_SQL.search(line)
    ]

    assert offenders == []


def test_the_pattern_catches_what_it_should():
    assert FORMATTED_SQL.search('cursor.execute(f"SELECT {x}")')
    assert FORMATTED_SQL.search("Model.objects.raw('SELECT %s' % x)")
    assert FORMATTED_SQL.search('cursor.execute("SELECT {}".format(x))')
    assert not FORMATTED_SQL.search('cursor.execute("SELECT %s", [x])')
