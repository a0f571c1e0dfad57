"""The shape of the app: one writer of unit rows, no import cycles, no private helpers borrowed,
one place where a request commits.

Read from the source, plus checks that the run-time guard of the root
conftest (every test fails if anything but inventory writes unit rows, or
calls a SQL function that writes units or holds) does catch a writer elsewhere.
"""
from __future__ import annotations

import ast
import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests import ownership
from webapp.extensions import db

APP = ownership.APP
SERVICES = APP / "services"
# Raw SQL that writes units, and the SQLAlchemy ways of writing the Unit table or its rows. Calls of the
# SQL functions that write units or holds are added from the migrated database (`source_writes`).
WRITES = re.compile(
    r"(UPDATE\s+units\b|INSERT\s+INTO\s+units\b|DELETE\s+FROM\s+units\b|Unit\.__table__\.(insert|update|delete)"
    r"|\b(insert|update|delete)\(Unit\b|\bunit\.status\s*=[^=]|\.status\s*=\s*UnitStatus\.)",
    re.I,
)


def python_files():
    return sorted(p for p in APP.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture
def sql_writers(app_ctx) -> set[str]:
    with db.engine.connect() as connection:
        return ownership.sql_writers(connection)


@pytest.fixture
def source_writes(sql_writers) -> re.Pattern:
    calls = ownership.calls_of(sql_writers)
    assert calls is not None
    return re.compile(f"{WRITES.pattern}|{calls.pattern}", re.I)


def writing_lines(paths, pattern: re.Pattern) -> dict[str, str]:
    return {
        f"{path.relative_to(APP)}:{n}": line.strip()
        for path in paths
        for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)
    }


def test_the_sql_functions_that_write_units_or_holds_are_all_known(sql_writers):
    # Found from their bodies, and through the functions they call (tb_hold_best only calls a writer).
    assert sql_writers >= {"tb_reserve_places", "tb_reserve_seats", "tb_reserve_best", "tb_hold_places",
                           "tb_hold_seats", "tb_hold_best", "tb_begin_reservation"}
    # Readers and lock takers are not writers.
    assert not sql_writers & {"tb_buyer_claims", "tb_buyer_count", "tb_waitlist_reserved_tiers", "tb_access_gate"}


def test_no_module_but_inventory_writes_unit_rows(source_writes):
    outside = [path for path in python_files() if not ownership.owned_by_inventory(path)]
    assert writing_lines(outside, source_writes) == {}


def test_the_source_check_sees_inventory_writing(source_writes):
    # The pattern is not vacuous: the owner's own writes match it, the reserve statements among them.
    inside = writing_lines([path for path in python_files() if ownership.owned_by_inventory(path)], source_writes)
    assert len(inside) >= 8
    assert {name for name in ("tb_reserve_places", "tb_reserve_seats", "tb_reserve_best")
            if any(name in line for line in inside.values())} == {"tb_reserve_places", "tb_reserve_seats",
                                                                   "tb_reserve_best"}


def test_the_run_time_guard_catches_a_writer_outside_inventory(app_ctx):
    ownership.GUARD.take()
    # Code compiled as if it lived in admin_events writes a unit row.
    sneaky = compile("session.execute(text('UPDATE units SET status = status WHERE false'))",
                     str(SERVICES / "admin" / "events.py"), "exec")
    exec(sneaky, {"session": db.session, "text": text})
    db.session.rollback()
    found = ownership.GUARD.take()
    assert len(found) == 1 and found[0].startswith("webapp/services/admin/events.py: UPDATE units")


def test_the_run_time_guard_catches_a_reserve_function_called_outside_inventory(app_ctx):
    ownership.GUARD.take()
    # Code compiled as if it lived in the catalog calls a reserve function (for no event: it refuses).
    sneaky = compile("session.execute(text('SELECT tb_reserve_best(0, 0, 0, 1, NULL, NULL, NULL)'))",
                     str(SERVICES / "selling" / "catalog.py"), "exec")
    with pytest.raises(DBAPIError):
        exec(sneaky, {"session": db.session, "text": text})
    db.session.rollback()
    found = ownership.GUARD.take()
    assert len(found) == 1 and found[0].startswith("webapp/services/selling/catalog.py: SELECT tb_reserve_best(")


def module_name(path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in python_files()}


def imported_modules(module: str, node: ast.AST) -> set[str]:
    """The project modules one import statement names (a name imported from a package may be a module)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        found |= {a.name for a in node.names if a.name in MODULES}
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from . import x
            package = module.split(".")[: -node.level] if not MODULES[module].name == "__init__.py" else \
                module.split(".")[: len(module.split(".")) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        for alias in node.names:
            if f"{base}.{alias.name}" in MODULES:
                found.add(f"{base}.{alias.name}")
            elif base in MODULES:
                found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    """Every import between the modules of `webapp`, at module level or inside functions.

    A package importing its own modules (a blueprint's `__init__` importing
    its views so their routes exist) is how a package is assembled, not a
    loop between two modules: those edges are left out.
    """
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            deps |= imported_modules(module, node)
        if path.name == "__init__.py":
            deps = {d for d in deps if not d.startswith(module + ".")}
        graph[module] = deps - {module}
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


def test_no_module_of_the_app_imports_itself_back():
    graph = import_graph()
    # The graph sees imports inside functions and through packages.
    assert "webapp.services.selling.inventory" in graph["webapp.services.waiting.waitlist"]
    assert "webapp.session_user" in graph["webapp.shop.views"]
    assert find_cycle(graph) is None


# The service groups, lowest first: a group imports only the groups before it.
# `errors` and `audit` are the base every group may use; `demo` (the demo
# data) sits on top of them all.
SERVICE_LAYERS = ["errors", "organiser_scope", "audit", "invariants", "messaging", "people", "selling", "waiting",
                  "money", "admin", "demo"]


def service_group(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["webapp", "services"] else None


def test_service_groups_import_one_way():
    graph = import_graph()
    assert set(SERVICE_LAYERS) >= {service_group(m) for m in graph if service_group(m)}
    upward = sorted(
        f"{module} -> {dep}"
        for module, deps in graph.items() if (group := service_group(module))
        for dep in deps if (other := service_group(dep)) and other != group
        and SERVICE_LAYERS.index(other) > SERVICE_LAYERS.index(group)
    )
    assert upward == []


def test_services_import_no_request_level_module():
    """Services run in CLI commands and workers too: nothing of a request's (views, the session cookie)."""
    graph = import_graph()
    allowed = ("webapp.services", "webapp.models", "webapp.extensions", "webapp.database", "webapp.parsing",
               "webapp.templating", "webapp.timezones")
    leaks = sorted(f"{m} -> {d}" for m, deps in graph.items() if service_group(m) or m == "webapp.services"
                   for d in deps if not d.startswith(allowed))
    assert leaks == []


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert find_cycle(graph) == cycle


def test_no_module_uses_a_private_helper_of_another_service():
    services = {p.stem for p in SERVICES.rglob("*.py") if p.stem != "__init__"}
    borrowed = {
        f"{path.relative_to(APP)}:{n}": line.strip()
        for path in python_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for module in services - {path.stem}
        if re.search(rf"\b{module}\._[a-z]", line)
    }
    assert borrowed == {}


# A request commits in one place, webapp/unit_of_work.py. These views commit
# in the middle of their work, each for the reason said beside the commit.
VIEW_COMMITS = {
    # Their answer is read on a connection of its own, which sees only what is committed.
    ("api/buyer.py", "hold_discount"), ("api/buyer.py", "hold_discount_remove"), ("api/buyer.py", "order_cancel"),
    ("shop/waiting_room.py", "waiting_room_page"), ("shop/waiting_room.py", "_lazy_pass"),
    # Locks that buyers queue on (the event row, a code, the waiting-list lock)
    # are let go before the answer is read and drawn.
    ("admin/events.py", "tier_update"), ("admin/layout.py", "seat_toggle"), ("admin/codes.py", "code_set_active"),
    ("checkout/views.py", "_after_code_change"), ("waitlist/views.py", "join"),
    ("api/buyer.py", "waitlist_join"), ("api/buyer.py", "waitlist_decline"),
    # Not a view: the waiting room's shared state, refreshed in memory at most once a second
    # in an app context of its own, commits the admission pass it runs when one is due.
    ("shop/waiting_room_now.py", "_refresh"),
}
# Not requests: commands and the worker loop commit for themselves; services
# commit only where they must (checked by review, not here).
NOT_REQUESTS = {"cli.py", "mail_cli.py", "webhooks_cli.py", "outbox_cli.py", "admin/cli.py", "launcher.py",
                "worker.py", "unit_of_work.py"}


def commits_by_function(path) -> set[str]:
    """The functions of a module that call `.commit()` (the innermost one, for a nested function)."""
    tree = ast.parse(path.read_text())
    functions = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
            around = [f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]
            found.add(max(around, key=lambda f: f.lineno).name if around else "<module>")
    return found


def test_views_leave_the_commit_to_the_unit_of_work():
    committing = {
        (rel, function)
        for path in python_files()
        if not (rel := path.relative_to(APP).as_posix()).startswith("services/") and rel not in NOT_REQUESTS
        for function in commits_by_function(path)
    }
    assert committing == VIEW_COMMITS


def test_the_commit_finder_sees_nested_functions(tmp_path):
    module = tmp_path / "views.py"
    module.write_text("def outer():\n    def inner():\n        db.session.commit()\n    x.commit()\n")
    assert commits_by_function(module) == {"inner", "outer"}
