"""A small random-weight transformer for the NumPy-only tests of its decoding step (no
TensorFlow): d_model 24 over 3 heads (head width 8), 2 blocks, 20 positions."""

from __future__ import annotations

import numpy as np

from engine.decoding.model import LoadedModel
from engine.decoding.transformer import TransformerStepper
from memebot.artifact.configs import TransformerConfig
from memebot.artifact.templates import TemplateEntry, TemplateTable
from memebot.artifact.vocab import Vocab

CFG = TransformerConfig(d_model=24, layers=2, heads=3, ff=40, max_len=20, max_boxes=3)
VOCAB = Vocab.build(["hello world|bye|when my dog eats the wifi|"])
TABLE = TemplateTable(
    [
        TemplateEntry("two-buttons", "Two Buttons", 87743020, (), 2, 1, 10),
        TemplateEntry("success-kid", "Success Kid", 61544, (), 1, 2, 10),
    ]
)


def random_weights(config: TransformerConfig = CFG, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = config.weight_shapes(VOCAB.size, TABLE.n_slots)
    return {k: rng.normal(0, 0.5, s).astype(np.float32) for k, s in shapes.items()}


def random_model(config: TransformerConfig = CFG) -> LoadedModel:
    stepper = TransformerStepper(random_weights(config), config)
    return LoadedModel("transformer", config, VOCAB, TABLE, stepper)
