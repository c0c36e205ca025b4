"""Data flows one way: training -> artifact <- engine. No import cycle among our modules (lazy
imports inside functions included), and nothing in engine/ or memebot/artifact imports
training/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "memebot", "training")


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, f in modules.items():
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            graph[m] |= {n for n in names if n in modules and n != m}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return [*stack[stack.index(d) :], d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles() -> None:
    graph = _graph()
    assert "engine.decoding.jobs" in graph and "training.models.base" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_engine_and_artifact_never_import_training() -> None:
    graph = _graph()
    serving = [m for m in graph if m.startswith(("engine", "memebot.artifact", "memebot.names"))]
    bad = {m: sorted(d for d in graph[m] if d.startswith("training")) for m in serving}
    assert {m: d for m, d in bad.items() if d} == {}
