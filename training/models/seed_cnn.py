"""`seed-cnn`: the imgflip article's conv net, reproduced as published (the baseline).

One training example per character: the input row is the 12-digit zero-padded Imgflip
template id, two spaces, the box index, two spaces, then the caption so far, left-padded
with 0 to 128 ids (engine/decoding/seed_cnn.py); the label is the next character
(training/batches.py: training_row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.decoding.model import Stepper
from engine.decoding.seed_cnn import SeedStepper
from memebot.artifact.configs import SeedCNNConfig
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from training.data import Caption
from training.models.base import Architecture, EvalRows


def build(config: SeedCNNConfig, vocab_size: int):  # -> keras.Model
    import keras
    from keras import layers

    model = keras.Sequential(name="seed_cnn")
    model.add(keras.Input((config.seq_len,), dtype="int32", name="row"))
    model.add(layers.Embedding(vocab_size, config.embedding))
    for i in range(5):
        model.add(layers.Conv1D(config.filters, config.kernel, activation="relu", padding="same"))
        model.add(layers.BatchNormalization())
        if i < 4:
            model.add(layers.MaxPooling1D(2))
        model.add(layers.Dropout(config.dropout))
    model.add(layers.GlobalMaxPooling1D())
    model.add(layers.Dense(config.dense, activation="relu"))
    model.add(layers.BatchNormalization())
    model.add(layers.Dropout(config.dropout))
    model.add(layers.Dense(vocab_size, activation="softmax"))
    return model


class SeedCNN(Architecture):
    name = "seed-cnn"
    config_class = SeedCNNConfig
    default_lr = 1e-3

    def build(
        self, config: Any, vocab: Vocab, templates: TemplateTable, *, precision: str = "float32"
    ) -> Any:
        self.check_precision(precision)
        return build(config, vocab.size)

    def compile(self, model: Any, lr: float, *, jit: bool = False) -> None:
        import keras

        # As published: RMSprop, sparse categorical cross-entropy on softmax outputs.
        model.compile(
            optimizer=keras.optimizers.RMSprop(lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    def batches(
        self,
        captions: Sequence[Caption],
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        train: bool,
        seed: int = 0,
    ) -> Any:
        from training.batches import SeedBatches

        return SeedBatches(
            captions,
            templates,
            vocab,
            config,
            batch_size=batch_size,
            shuffle=train,
            template_dropout=config.template_dropout if train else 0.0,
            seed=seed,
        )

    def targets_per_batch(self, data: Any) -> float:
        return float(data.batch_size)

    def eval_pass(
        self,
        keras_model: Any,
        captions: Sequence[Caption],
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        progress: bool,
    ) -> EvalRows:
        from tqdm import tqdm

        data = self.batches(captions, vocab, templates, config, batch_size=batch_size, train=False)
        for i in tqdm(range(len(data)), desc="eval", disable=not progress, leave=False):
            x, y = data[i]
            probs = np.asarray(keras_model(x, training=False), dtype=np.float64)
            p = np.maximum(probs[np.arange(len(y)), y], 1e-30)
            caps = data.rows[data.order[i * batch_size : (i + 1) * batch_size], 0]
            ones = np.ones(len(y), dtype=np.int64)
            yield caps, -np.log(p), (probs.argmax(-1) == y).astype(np.int64), ones

    def stepper(self, keras_model: Any, config: Any, vocab: Vocab) -> Stepper:
        return SeedStepper(keras_model, config, vocab)
