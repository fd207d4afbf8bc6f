"""The shape of shipper/: no import cycles, small functions and classes, registries as the only
lists of names, and one event decoder for the pipeline and the tests."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper import schemas
from shipper.cli import build_parser
from shipper.config import config_from_mapping
from shipper.core.pipeline import Pipeline
from shipper.errors import ConfigError
from shipper.models import InvalidEvent, decode_event
from shipper.schemas import SCHEMAS, SchemaSpec
from shipper.sources import SOURCES

ROOT = Path(__file__).resolve().parent.parent / "shipper"
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 200


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _walk(node: ast.AST, in_function: bool = False, type_only: bool = False) -> Iterator[tuple[ast.AST, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        yield child, in_function, type_only
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from _walk(child, in_function, True)
        else:
            yield from _walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
                             type_only)


def _imports(path: Path) -> set[str]:
    """Modules of shipper/ that `path` imports when it runs (TYPE_CHECKING blocks excluded)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node, _, type_only in _walk(ast.parse(path.read_text())):
        if type_only or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("shipper")}
        elif node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{target}.{a.name}" for a in node.names} | {target}
        elif node.module and node.module.startswith("shipper"):
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    return {m: {d for d in _imports(p) if d in files and d != m} for m, p in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 30 and graph["shipper.cli"], "the scan found the package"
    assert find_cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def _sizes() -> Iterator[tuple[str, str, int, int]]:
    for path in sorted(ROOT.rglob("*.py")):
        for node, _, _ in _walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield str(path.relative_to(ROOT.parent)), node.name, node.end_lineno - node.lineno + 1, MAX_FUNCTION_LINES
            elif isinstance(node, ast.ClassDef):
                yield str(path.relative_to(ROOT.parent)), node.name, node.end_lineno - node.lineno + 1, MAX_CLASS_LINES


def test_no_function_over_80_lines_no_class_over_200() -> None:
    sizes = list(_sizes())
    assert len(sizes) > 300
    too_long = [f"{where}: {name} has {n} lines (limit {limit})" for where, name, n, limit in sizes if n > limit]
    assert too_long == []


def test_imports_are_at_module_level() -> None:
    inside = []
    for path in ROOT.rglob("*.py"):
        for node, in_function, _ in _walk(ast.parse(path.read_text())):
            if in_function and isinstance(node, (ast.Import, ast.ImportFrom)):
                inside.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {ast.unparse(node)}")
    # `ssl` is imported only when the simulator serves TLS, etcd3gw (the `[etcd]` extra) only when
    # the state lives in etcd.
    allowed = ("import ssl", "import etcd3gw", "import exceptions as etcd_errors")
    assert [i for i in inside if not i.endswith(allowed)] == []


# -- registries ----------------------------------------------------------------------------------
class _Toy(msgspec.Struct):
    toy_id: str
    tier: str


def _build_toy(cfg: Any) -> Any:
    return lambda event, raw, tier: _Toy(event.id, tier)


@pytest.fixture
def toy_schema() -> Iterator[str]:
    schemas.register(SchemaSpec(name="toy", build=_build_toy, summary="a toy", slim=True,
                                protected=frozenset({"toy_id"}), id_field="toy_id"))
    try:
        yield "toy"
    finally:
        del SCHEMAS["toy"]


def test_a_registered_schema_is_accepted_listed_and_used(toy_schema: str) -> None:
    cfg = config_from_mapping({"output": {"schema": toy_schema, "chain": "off"}})
    assert toy_schema in build_parser().format_help()
    raw = msgspec.Raw(b'{"id":"e1","eventDate":"2026-01-15T00:00:00Z"}')
    out = Pipeline(cfg).process([raw], {}, 0, 0)
    assert msgspec.json.decode(bytes(out.data)) == {"toy_id": "e1", "tier": "standard"}


def test_unregistered_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="output.schema 'toy' is unknown: use one of siem"):
        config_from_mapping({"output": {"schema": "toy"}})
    with pytest.raises(ConfigError, match="genesys.api 'x' is unknown: use one of audits-query"):
        config_from_mapping({"genesys": {"api": "x"}})
    help_text = build_parser().format_help()
    assert all(name in help_text for name in (*SCHEMAS, *SOURCES))


def test_names_are_listed_only_in_the_registries() -> None:
    """No other module spells out the schema or source names as a list."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.parent.name == "simulator" or path.name == "simulator.py":
            continue
        text = path.read_text()
        if '"siem", "ecs"' in text or '"audits-query", "audits-realtime"' in text:
            offenders.append(str(path.relative_to(ROOT.parent)))
    assert offenders == []


# -- one event decoder ---------------------------------------------------------------------------
def _pipeline_verdict(raw: bytes) -> str:
    cfg = config_from_mapping({"output": {"schema": "raw"}})
    out = Pipeline(cfg).process([msgspec.Raw(raw)], {}, -(10**15), 0)
    if out.quarantined:
        return "invalid: " + out.quarantined[0][1]
    return "ok"


def _decoder_verdict(raw: bytes) -> str:
    try:
        decode_event(raw, slim=True)
    except InvalidEvent as exc:
        return f"invalid: {exc}"
    return "ok"


@pytest.mark.parametrize("raw", [
    b'{"id": "", "eventDate": "garbage"}',
    b'{"id": "a", "eventDate": "garbage"}',
    b'{"id": "", "eventDate": "2026-01-15T00:00:00Z"}',
    b'{"eventDate": "2026-01-15T00:00:00Z"}',
    b'{"id": 5, "eventDate": "2026-01-15T00:00:00Z"}',
    b'not json',
    b'{"id": "a", "eventDate": "2026-01-15T00:00:00Z", "user": {"name": 7}}',
    b'{"id": "a", "eventDate": "2026-01-15T00:00:00"}',
    b'{"id": "a", "eventDate": "2026-01-15T00:00:00Z"}',
])
def test_decode_event_and_the_pipeline_agree(raw: bytes) -> None:
    assert _pipeline_verdict(raw) == _decoder_verdict(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["id", "eventDate", "user", "action"]),
                       st.one_of(st.none(), st.text(max_size=30), st.integers(), st.sampled_from(
                           ["2026-01-15T00:00:00Z", "2026-01-15T00:00:00.123+02:00", ""])), max_size=4))
def test_decode_event_and_the_pipeline_agree_on_anything(doc: dict[str, Any]) -> None:
    raw = msgspec.json.encode(doc)
    assert _pipeline_verdict(raw) == _decoder_verdict(raw)
