"""Data flows one way: training -> artifact <- engine; bot -> engine over HTTP. No import cycle
among our modules (lazy imports inside functions included), nothing in engine/ or
memebot/artifact imports training/, and the bot speaks to the engine only through its schema."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "memebot", "training", "bot", "bench", "scripts")


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
    for m in ("engine.decoding.jobs", "training.models.base", "bot.cogs.memes", "bench.engine"):
        assert m in graph
    assert any(m.startswith("scripts.") for m in graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_engine_and_artifact_never_import_training() -> None:
    graph = _graph()
    serving = [m for m in graph if m.startswith(("engine", "memebot.artifact", "memebot.names"))]
    bad = {m: sorted(d for d in graph[m] if d.startswith("training")) for m in serving}
    assert {m: d for m, d in bad.items() if d} == {}


def test_bot_imports_only_the_engine_schema() -> None:
    """The bot talks HTTP to the engine: of engine/ it may import only the API schema (pydantic,
    no ML), and nothing of training/ (lazy imports included)."""
    graph = _graph()
    bot = [m for m in graph if m == "bot" or m.startswith("bot.")]
    assert "engine.client" in bot and "engine.schema" in graph["engine.client"]
    bad = {
        m: sorted(
            d
            for d in graph[m]
            if d.split(".")[0] == "training"
            or (d.split(".")[0] == "engine" and d != "engine.schema")
        )
        for m in bot
    }
    assert {m: d for m, d in bad.items() if d} == {}
