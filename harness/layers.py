"""The project's layers and the rule between them, checked over every import in the tree.

Data flows one way (docs/ARCHITECTURE.md): each layer imports only itself and the layers below
it, and a few layers are narrower still. An import counts wherever it stands (module top,
inside a function, under `TYPE_CHECKING`) and so does `importlib.import_module("name")` with a
literal name; a module reaches everything its imports reach, and each rule holds for what a
module reaches, not only for what it imports itself. A violation is reported with the chain of
imports that leads to it.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # settings, errors, names, caption format, shared Literals, artifact format, store, filter
    ("ground", ("memebot",)),
    ("decoding", ("engine.decoding",)),  # the model steps and decoders (NumPy; TF on request)
    ("engine", ("engine",)),  # the HTTP server, its schema, and engine.client
    ("training", ("training",)),
    ("retrain", ("retrain",)),
    ("bot", ("bot",)),
    ("entry", ("memebot.cli", "migrations")),  # the console script; Alembic's environment
    ("harness", ("harness",)),  # what tests and benchmarks start
    ("top", ("bench", "scripts", "tests")),
)
PACKAGES: tuple[str, ...] = ("memebot", "engine", "training", "retrain", "bot", "migrations")
PACKAGES += ("harness", "bench", "scripts", "tests")


@dataclass(frozen=True)
class Narrower:
    """Modules under `origin` reach nothing under `never` except what `only` allows."""

    origin: str
    never: str
    only: tuple[str, ...] = ()
    why: str = ""


NARROWER: tuple[Narrower, ...] = (
    Narrower("retrain", "training", why="retrain runs training as `memebot` subprocesses"),
    Narrower(
        "retrain",
        "engine",
        ("engine.client", "engine.schema"),
        "retrain speaks to engines over HTTP (engine.client)",
    ),
    Narrower("bot", "training", why="the bot never trains"),
    Narrower(
        "bot",
        "engine",
        ("engine.client", "engine.schema"),
        "the bot speaks to the engine over HTTP (engine.client)",
    ),
    Narrower(
        "bot",
        "retrain",
        (
            "retrain.requests",
            "retrain.promotion",
            "retrain.queue",
            "retrain.guilds",
            "retrain.taste_curation",
            "retrain.taste_requests",
            "retrain.cooldown",
        ),
        "the bot asks for runs and promotions, checks a server has votes enough for a taste"
        " and its budget, rolls a server's taste back, and sweeps servers it left; the worker"
        " runs elsewhere",
    ),
)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if _under(module, p) and len(p) > best:
                best, rank = len(p), i
    if rank < 0:
        raise ValueError(f"{module} is in no layer")
    return rank


def modules_of(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Module name -> source text of every .py file under the packages."""
    out: dict[str, str] = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = f.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f.read_text(encoding="utf-8")
    return out


def _imported(module: str, source: str, known: Mapping[str, str]) -> set[str]:
    """Our modules that `module` imports (a `from pkg import name` of a submodule counts as
    that submodule)."""
    names: set[str] = set()
    package = module if f"{module}.__init__" in known else module.rpartition(".")[0]
    by_name = False  # import_module(variable): every module named in the source may load
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package upward
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.Call) and _calls_import_module(node):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            else:
                by_name = True
    if by_name:
        names.update(
            n.value
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in known
        )
    found: set[str] = set()
    for n in names:
        # `import a.b.c` also runs a and a.b: each existing prefix is reached (but a module's
        # own packages are running already: no edge back to them).
        parts = n.split(".")
        found.update(p for i in range(1, len(parts) + 1) if (p := ".".join(parts[:i])) in known)
    return {f for f in found if not _under(module, f)}


def _calls_import_module(node: ast.Call) -> bool:
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
        isinstance(f, ast.Name) and f.id == "import_module"
    )


def import_graph(modules: Mapping[str, str]) -> dict[str, set[str]]:
    known = dict(modules) | {f"{m}.__init__": "" for m in modules}  # packages, for relatives
    return {m: _imported(m, src, known) for m, src in modules.items()}


def _chains(graph: Mapping[str, set[str]], start: str) -> dict[str, list[str]]:
    """Everything `start` reaches, each with the shortest import chain to it."""
    paths = {start: [start]}
    todo = deque([start])
    while todo:
        m = todo.popleft()
        for d in sorted(graph.get(m, ())):
            if d not in paths:
                paths[d] = [*paths[m], d]
                todo.append(d)
    return paths


def _problem(origin: str, target: str) -> str | None:
    if _under(target, "tests") and target not in ("tests", origin):
        if _under(origin, "tests"):
            return "a test imports another test module (shared helpers live in harness/)"
        return "only pytest loads tests/ (what tests and benchmarks share lives in harness/)"
    # A package's own __init__ (e.g. `memebot` for memebot.cli) is its own layer's business.
    if layer_of(target) > layer_of(origin) and not _under(origin, target):
        return (
            f"{LAYERS[layer_of(origin)][0]} imports {LAYERS[layer_of(target)][0]}, a layer above it"
        )
    for rule in NARROWER:
        if (
            _under(origin, rule.origin)
            and _under(target, rule.never)
            and not any(_under(target, o) for o in rule.only)
            and not any(_under(o, target) for o in rule.only)  # the package of an allowed one
        ):
            allowed = f" (of {rule.never} only {', '.join(rule.only)})" if rule.only else ""
            return f"{rule.origin} never reaches {rule.never}{allowed}: {rule.why}"
    return None


def violations(graph: Mapping[str, set[str]]) -> list[str]:
    """One line per module that reaches what its layer may not: the chain and the rule."""
    out = []
    for m in sorted(graph):
        # Shortest chain first; of equal ones the deepest module (engine.schema, not the
        # package `engine` that importing it also runs).
        reached = sorted(_chains(graph, m).items(), key=lambda kv: (len(kv[1]), -len(kv[0])))
        for target, chain in reached:
            why = _problem(m, target)
            if why:
                out.append(f"{' -> '.join(chain)}: {why}")
                break  # the shortest chain per module is enough to act on
    return out


def cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle among modules (lazy imports included), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
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
