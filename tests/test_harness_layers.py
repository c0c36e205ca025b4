"""The layer rule over the whole tree (harness/layers.py): no import cycle, and nothing reaches
a layer above its own or what a narrower rule keeps it from, lazy imports included. The cases
below put back each package cycle the tree once had and show that the check names its chain."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.layers import LAYERS, cycle, import_graph, layer_of, modules_of, violations

ROOT = Path(__file__).resolve().parent.parent
TREE = modules_of(ROOT)


def with_lines(module: str, code: str) -> dict[str, str]:
    """The tree with `code` appended to `module`'s source."""
    return TREE | {module: TREE[module] + "\n" + textwrap.dedent(code)}


def test_the_tree_keeps_its_layers() -> None:
    graph = import_graph(TREE)
    for m in ("engine.decoding.jobs", "training.models.base", "bot.cogs.memes", "bench.engine"):
        assert m in graph
    assert {"migrations.env", "retrain.worker", "harness.engine"} <= set(graph)
    assert any(m.startswith("scripts.") for m in graph)
    # Lazy and by-name imports are edges: memebot.cli loads each command's module by name.
    assert {"training.cli", "retrain.cli", "bot.cli"} <= graph["memebot.cli"]
    assert "training.caption_check" in graph["training.cli"]  # inside cmd_check_captions
    assert cycle(graph) is None, " -> ".join(cycle(graph) or [])
    assert violations(graph) == []


def test_every_module_has_a_layer_and_the_layers_are_ordered() -> None:
    for m in TREE:
        layer_of(m)  # raises for a module outside every layer
    names = [name for name, _ in LAYERS]
    for low, high in [("ground", "decoding"), ("decoding", "engine"), ("training", "retrain")]:
        assert names.index(low) < names.index(high)
    assert layer_of("memebot.cli") > layer_of("bot.app") > layer_of("retrain.worker")
    assert layer_of("memebot.store.tables") == layer_of("memebot.settings") == 0


@pytest.mark.parametrize(
    ("module", "code", "expected"),
    [
        # settings once took the decoder names from the engine's API schema.
        (
            "memebot.settings",
            "from engine.schema import Decoder\n",
            "memebot.settings -> engine.schema: ground imports engine",
        ),
        # /model rollback once called the worker (lazily, inside the command).
        (
            "bot.cogs.admin",
            "def rollback():\n    from retrain.worker import rollback\n",
            "bot.cogs.admin -> retrain.worker: bot never reaches retrain (of retrain only",
        ),
        # `memebot data export-ratings` was once registered by training's CLI.
        (
            "training.cli",
            "def register_more(dsub):\n    from retrain.cli import register_data\n",
            "training.cli -> retrain.cli: training imports retrain, a layer above it",
        ),
        # Curation once borrowed training's cleaning in-process.
        (
            "retrain.corpus",
            "def clean():\n    from training.cleaning import clean_captions\n",
            "retrain.corpus -> training.cleaning: retrain never reaches training",
        ),
        # An allowed module that reaches too far makes every importer's chain fail.
        (
            "engine.client",
            "import training.cleaning\n",
            "bot.app -> engine.client -> training.cleaning: bot never reaches training",
        ),
        # Helpers tests and benchmarks share live in harness/, not in a test module.
        (
            "tests.test_retrain_runs",
            "from tests.test_memebot_store import with_store\n",
            "tests.test_retrain_runs -> tests.test_memebot_store: a test imports another test",
        ),
        (
            "bench.bot",
            "def bench():\n    from tests.conftest import train_tiny\n",
            "bench.bot -> tests.conftest: only pytest loads tests/",
        ),
        # Under TYPE_CHECKING it is still a dependency.
        (
            "engine.decoding.pickers",
            "if TYPE_CHECKING:\n    from engine.service import X\n",
            "engine.decoding.pickers -> engine.service: decoding imports engine",
        ),
    ],
)
def test_each_old_cycle_is_caught_with_its_chain(module: str, code: str, expected: str) -> None:
    found = violations(import_graph(with_lines(module, code)))
    assert any(v.startswith(expected) for v in found), found


def test_a_module_cycle_is_caught() -> None:
    graph = import_graph(with_lines("memebot.errors", "def f():\n    import memebot.settings\n"))
    found = cycle(graph)
    assert found is not None and found[0] == found[-1]
    assert {"memebot.errors", "memebot.settings"} <= set(found)


def test_import_module_by_name_counts() -> None:
    code = "import importlib\nimportlib.import_module('bot.app')\n"
    found = violations(import_graph(with_lines("engine.service", code)))
    assert any(v.startswith("engine.service -> bot.app: engine imports bot") for v in found)
