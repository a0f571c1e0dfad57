"""The shape of the service layer: one writer of unit rows, no import cycles, no private helpers borrowed.

Read from the source, plus a check that the run-time guard of the root
conftest (every test fails if anything but inventory writes unit rows) does
catch a writer elsewhere.
"""
from __future__ import annotations

import ast
import re

import pytest
from sqlalchemy import text

from tests import ownership
from webapp.extensions import db

APP = ownership.APP
SERVICES = APP / "services"
# Raw SQL that writes units, and the SQLAlchemy ways of writing the Unit table or its rows.
WRITES = re.compile(
    r"(UPDATE\s+units\b|INSERT\s+INTO\s+units\b|DELETE\s+FROM\s+units\b|Unit\.__table__\.(insert|update|delete)"
    r"|\b(insert|update|delete)\(Unit\b|\bunit\.status\s*=[^=]|\.status\s*=\s*UnitStatus\."
    # the reserve functions (migrations/sql/), which write units: inventory's to call
    r"|\btb_reserve_(places|seats)\b|\btb_begin_reservation\b)",
    re.I,
)


def python_files():
    return sorted(p for p in APP.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_but_inventory_writes_unit_rows():
    writers = {
        f"{path.relative_to(APP)}:{n}": line.strip()
        for path in python_files() if path != ownership.OWNER
        for n, line in enumerate(path.read_text().splitlines(), 1) if WRITES.search(line)
    }
    assert writers == {}


def test_the_source_check_sees_inventory_writing():
    # The pattern is not vacuous: the owner's own writes match it.
    assert len([line for line in ownership.OWNER.read_text().splitlines() if WRITES.search(line)]) >= 8


def test_the_run_time_guard_catches_a_writer_outside_inventory(app_ctx):
    ownership.GUARD.take()
    # Code compiled as if it lived in admin_events writes a unit row.
    sneaky = compile("session.execute(text('UPDATE units SET status = status WHERE false'))",
                     str(SERVICES / "admin_events.py"), "exec")
    exec(sneaky, {"session": db.session, "text": text})
    db.session.rollback()
    found = ownership.GUARD.take()
    assert len(found) == 1 and found[0].startswith("webapp/services/admin_events.py: UPDATE units")


def service_imports() -> dict[str, set[str]]:
    """Every import between service modules, at module level or inside functions."""
    modules = {p.stem for p in SERVICES.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((SERVICES / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "webapp.services":
                deps |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("webapp.services."):
                deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] for a in node.names if a.name.startswith("webapp.services.")}
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_services_import_each_other_without_a_cycle():
    graph = service_imports()
    assert "waitlist" in graph["waitlist_read"] and "inventory" in graph["waitlist"]
    assert find_cycle(graph) is None


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert find_cycle(graph) == cycle


def test_no_module_uses_a_private_helper_of_another_service():
    borrowed = {
        f"{path.relative_to(APP)}:{n}": line.strip()
        for path in python_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for module in {p.stem for p in SERVICES.glob("*.py")} - {path.stem}
        if re.search(rf"\b{module}\._[a-z]", line)
    }
    assert borrowed == {}
