"""Who may import what (DESIGN.md, "Layout and who may import what"), checked on the source with ast.

- tradewatch/domain/ is pure: no Celery, Redis, SQLAlchemy, Alembic, database driver or HTTP
  client, no os.environ / os.getenv, no wall clock (callers pass ``now``).
- Only tradewatch/tasks/settings.py reads the environment.
- tradewatch/alerting/ and tradewatch/storage/ never import tradewatch.tasks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tradewatch"

FORBIDDEN_IN_DOMAIN = (
    "celery", "kombu", "redis", "sqlalchemy", "alembic", "psycopg", "psycopg2", "requests", "httpx",
    "urllib.request", "http.client", "slack_sdk", "pagerduty", "fastapi",
    "aiohttp", "urllib3", "socket",
)
WALL_CLOCK = {
    ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime"),
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("pandas", "Timestamp.now"), ("pandas", "Timestamp.utcnow"), ("pandas", "Timestamp.today"),
    ("numpy", "datetime64.now"),
}
ENVIRONMENT = {("os", "environ"), ("os", "getenv"), ("os", "putenv"), ("os", "environb"), ("os", "getenvb")}
SETTINGS_MODULE = PACKAGE / "tasks" / "settings.py"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join(base + ([node.module] if node.module else []))


class Scan(ast.NodeVisitor):
    """Collect the modules a file imports and the dotted names it uses (aliases resolved)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.imports: list[tuple[int, str]] = []  # (line, fully qualified module or module.name)
        self.aliases: dict[str, str] = {}  # local name -> qualified name
        self.uses: list[tuple[int, str]] = []  # (line, qualified dotted name) for attribute chains and names

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append((node.lineno, alias.name))
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = _resolve_relative(self.path, node)
        self.imports.append((node.lineno, module))
        for alias in node.names:
            qualified = f"{module}.{alias.name}" if module else alias.name
            self.imports.append((node.lineno, qualified))
            self.aliases[alias.asname or alias.name] = qualified

    def _dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted is not None:
            self.uses.append((node.lineno, dotted))
            return  # the chain is recorded whole; its prefixes would only repeat it
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases:
            self.uses.append((node.lineno, self.aliases[node.id]))

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("x") / __import__("x") with a constant name.
        func = self._dotted(node.func) if isinstance(node.func, (ast.Attribute, ast.Name)) else None
        if func in ("importlib.import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self.imports.append((node.lineno, node.args[0].value))
        self.generic_visit(node)


def scan_source(source: str, path: Path) -> Scan:
    scan = Scan(path)
    scan.visit(ast.parse(source, filename=str(path)))
    return scan


def scan_file(path: Path) -> Scan:
    return scan_source(path.read_text(encoding="utf-8"), path)


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def forbidden_imports(path: Path, scan: Scan, forbidden: tuple[str, ...]) -> list[Violation]:
    found = []
    for line, name in scan.imports:
        for prefix in forbidden:
            if _matches(name, prefix):
                found.append(Violation(_rel(path), line, f"imports {name} (forbidden: {prefix})"))
    return sorted(set(found), key=lambda v: (v.line, v.what))


def environment_reads(path: Path, scan: Scan) -> list[Violation]:
    found = set()
    for line, name in scan.uses + scan.imports:
        for module, attr in ENVIRONMENT:
            if _matches(name, f"{module}.{attr}"):
                found.add(Violation(_rel(path), line, f"reads the environment ({module}.{attr})"))
    return sorted(found, key=lambda v: v.line)


def wall_clock_reads(path: Path, scan: Scan) -> list[Violation]:
    found = set()
    for line, name in scan.uses + scan.imports:
        for module, attr in WALL_CLOCK:
            targets = {f"{module}.{attr}"}
            if module == "datetime":  # datetime.datetime.now and `from datetime import datetime`
                targets.add(f"datetime.datetime.{attr}")
            if module == "date":
                targets = {f"datetime.date.{attr}"}
            if any(name == t for t in targets):
                found.add(Violation(_rel(path), line, f"reads the wall clock ({name}); take `now` as an argument"))
    return sorted(found, key=lambda v: v.line)


def python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def _report(violations: list[Violation]) -> str:
    return "\n".join(str(v) for v in violations)


# ------------------------------------------------------------------ the rules


DOMAIN_FILES = python_files(PACKAGE / "domain")


def test_the_domain_package_is_found():
    names = {module_name(p) for p in DOMAIN_FILES}
    assert "tradewatch.domain.events.models" in names
    assert "tradewatch.domain.trail.trade_history" in names


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: _rel(p))
def test_domain_is_pure(path):
    scan = scan_file(path)
    violations = (
        forbidden_imports(path, scan, FORBIDDEN_IN_DOMAIN)
        + environment_reads(path, scan)
        + wall_clock_reads(path, scan)
    )
    assert not violations, "domain/ must stay pure (DESIGN.md):\n" + _report(violations)


def test_only_settings_reads_the_environment():
    violations = []
    for path in python_files(PACKAGE):
        if path == SETTINGS_MODULE:
            continue
        violations += environment_reads(path, scan_file(path))
    assert not violations, "only tradewatch/tasks/settings.py may read the environment:\n" + _report(violations)


@pytest.mark.parametrize("package", ["alerting", "storage", "domain"])
def test_package_never_imports_tasks(package):
    violations = []
    for path in python_files(PACKAGE / package):
        violations += forbidden_imports(path, scan_file(path), ("tradewatch.tasks",))
    assert not violations, f"tradewatch/{package} must not import tradewatch.tasks:\n" + _report(violations)


# ------------------------------------------------------------------ the checker itself


FAKE = PACKAGE / "domain" / "fake" / "module.py"


def _all(source: str) -> list[str]:
    scan = scan_source(source, FAKE)
    found = forbidden_imports(FAKE, scan, FORBIDDEN_IN_DOMAIN + ("tradewatch.tasks",))
    found += environment_reads(FAKE, scan) + wall_clock_reads(FAKE, scan)
    return [str(v) for v in found]


@pytest.mark.parametrize(
    ("source", "expect"),
    [
        ("import sqlalchemy", "imports sqlalchemy"),
        ("from sqlalchemy.orm import Session", "imports sqlalchemy.orm"),
        ("import celery.app as c", "imports celery.app"),
        ("from kombu import Queue", "imports kombu"),
        ("import redis", "imports redis"),
        ("import alembic", "imports alembic"),
        ("import psycopg", "imports psycopg"),
        ("import requests", "imports requests"),
        ("import httpx", "imports httpx"),
        ("import urllib.request", "imports urllib.request"),
        ("from urllib import request", "imports urllib.request"),
        ("from urllib.request import urlopen", "imports urllib.request"),
        ("from http import client", "imports http.client"),
        ("import http.client as hc", "imports http.client"),
        ("import slack_sdk", "imports slack_sdk"),
        ("import pagerduty", "imports pagerduty"),
        ("from fastapi import FastAPI", "imports fastapi"),
        ("import importlib\nimportlib.import_module('redis')", "imports redis"),
        ("from ...tasks import app", "imports tradewatch.tasks"),
        ("from tradewatch.tasks.settings import Settings", "imports tradewatch.tasks"),
        ("import os\nx = os.environ['A']", "os.environ"),
        ("import os\nx = os.environ.get('A')", "os.environ"),
        ("import os\nx = os.getenv('A')", "os.getenv"),
        ("import os as o\nx = o.getenv('A')", "os.getenv"),
        ("from os import environ\nx = environ['A']", "os.environ"),
        ("from os import getenv as g\nx = g('A')", "os.getenv"),
        ("import time\nt = time.time()", "time.time"),
        ("from time import time\nt = time()", "time.time"),
        ("from time import time_ns\nt = time_ns()", "time.time_ns"),
        ("import datetime\nt = datetime.datetime.now()", "datetime.datetime.now"),
        ("from datetime import datetime\nt = datetime.now()", "datetime.datetime.now"),
        ("from datetime import datetime as dt\nt = dt.utcnow()", "datetime.datetime.utcnow"),
        ("from datetime import date\nt = date.today()", "datetime.date.today"),
        ("import datetime as d\nt = d.date.today()", "datetime.date.today"),
    ],
)
def test_checker_catches(source, expect):
    found = _all(source)
    assert any(expect in v for v in found), found
    assert all(v.startswith("tradewatch/domain/fake/module.py:") for v in found)


def test_checker_names_file_and_line():
    found = _all("x = 1\n\nimport os\ny = os.environ['HOME']\n")
    assert found == ["tradewatch/domain/fake/module.py:4: reads the environment (os.environ)"]


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nimport pandas as pd\nfrom pydantic import BaseModel",
        "from datetime import datetime, timezone\nx = datetime(2026, 1, 1, tzinfo=timezone.utc)",
        "from datetime import datetime\nx = datetime.fromisoformat('2026-01-01')",
        "import time\nx = time.monotonic",  # not the wall clock
        "from tradewatch.domain.events import parse_event",
        "from . import models",
        "import os.path\nx = os.path.join('a', 'b')",
        "environ = {}\nx = environ.get('A')",  # a local name, not os.environ
        "import http\nimport urllib.parse",
        "redis_url = 'x'\nsqlalchemy_note = 'y'",
    ],
)
def test_checker_allows(source):
    assert _all(source) == []
