"""What the conditioned character RNNs (char-gru, lstm) share in training: the Keras graph
around the recurrent layers, teacher forcing on whole captions (every position is a target),
their batches, loss and evaluation pass. A subclass brings its recurrent layer and its
decoding step (engine/decoding/)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.decoding.model import log_softmax
from memebot.artifact.configs import RecurrentConfig
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from training.data import Caption
from training.gru_dataset import NEGATIVE_OFFSET
from training.models.base import Architecture, EvalRows

# Unlikelihood -log(1 - p) is floored at -log(UL_FLOOR): a character the model is nearly sure
# of (p > 1 - UL_FLOOR, e.g. the rest of a common word) is not pushed, since pushing it would
# cost every caption that shares it, upvoted ones and the base data included.
UL_FLOOR = 0.01


def build_graph(
    config: RecurrentConfig,
    vocab_size: int,
    n_slots: int,
    layer: Callable[[Any, int, str | None], Any],  # (config, index, dtype) -> a Keras RNN
    *,
    name: str,
    dtype: str | None = None,
):  # -> keras.Model
    """char/box/template embeddings -> `config.layers` recurrent layers -> logits.

    `dtype`: a Keras dtype policy for everything up to the recurrent layers
    ("mixed_bfloat16" trains ~1.3x faster on CPUs with bfloat16 dot products); the logits and
    the loss stay float32. Variables are float32 under every policy, so weights move freely
    between precisions."""
    import keras
    from keras import layers, ops

    chars = keras.Input((None,), dtype="int32", name="chars")  # [B,T]: BOS + text[:-1]
    boxes = keras.Input((None,), dtype="int32", name="boxes")  # [B,T]: box index per position
    template = keras.Input((), dtype="int32", name="template")  # [B]: conditioning slot
    x_c = layers.Embedding(vocab_size, config.char_emb, name="char_emb", dtype=dtype)(chars)
    x_b = layers.Embedding(config.max_boxes, config.box_emb, name="box_emb", dtype=dtype)(
        ops.minimum(boxes, config.max_boxes - 1)
    )
    x_t = layers.Embedding(n_slots, config.template_emb, name="template_emb", dtype=dtype)(
        template
    )  # [B,E]
    x_t = ops.expand_dims(x_t, 1) + ops.zeros_like(x_c[:, :, :1])  # [B,T,Et] (T is dynamic)
    x = layers.Concatenate(name="step_input", dtype=dtype)([x_c, x_b, x_t])  # [B,T,Ec+Eb+Et]
    for i in range(config.layers):
        if i and config.dropout:
            x = layers.Dropout(config.dropout, dtype=dtype)(x)
        x = layer(config, i, dtype)(x)  # [B,T,H]: return_sequences
    logits = layers.Dense(vocab_size, name="logits", dtype="float32")(x)  # [B,T,V]
    return keras.Model({"chars": chars, "boxes": boxes, "template": template}, logits, name=name)


def caption_loss() -> Any:  # -> keras.losses.Loss
    """Per target [B,T]: cross-entropy -log p(y); for targets of negative (downvoted) rows,
    sent as id + NEGATIVE_OFFSET (training/gru_dataset.py), unlikelihood -log(1 - p(y)),
    which lowers their probability but, unlike a negated cross-entropy, is bounded below by 0.
    Averaged with the sample weights, whose negative rows carry --unlikelihood-weight."""
    import keras
    from keras import ops

    class CaptionLoss(keras.losses.Loss):
        def call(self, y_true: Any, y_pred: Any) -> Any:
            y = ops.cast(y_true, "int32")
            neg = y >= NEGATIVE_OFFSET
            ce = ops.sparse_categorical_crossentropy(
                ops.where(neg, y - NEGATIVE_OFFSET, y), y_pred, from_logits=True
            )  # [B,T] = -log p(y)
            unlikely = -ops.log(ops.maximum(-ops.expm1(-ce), UL_FLOOR))  # -log(1 - p(y))
            return ops.where(neg, unlikely, ce)

    return CaptionLoss(name="caption_loss", reduction="mean_with_sample_weight")


def weights_of(model: Any) -> dict[str, np.ndarray]:  # model: keras.Model
    """A trained model's weights by variable path, as float32 arrays (what the steppers take)."""
    return {v.path: np.asarray(v.numpy(), dtype=np.float32) for v in model.weights}


class RecurrentArch(Architecture):
    default_lr = 2e-3
    precisions = ("float32", "mixed_bfloat16")
    trains_negatives = True

    def recurrent_layer(self, config: Any, index: int, dtype: str | None) -> Any:
        """Recurrent layer `index` (return_sequences=True), named as weight_shapes says."""
        raise NotImplementedError

    def build(
        self, config: Any, vocab: Vocab, templates: TemplateTable, *, precision: str = "float32"
    ) -> Any:
        self.check_precision(precision)
        dtype = None if precision == "float32" else precision
        return build_graph(
            config,
            vocab.size,
            templates.n_slots,
            self.recurrent_layer,
            name=self.name.replace("-", "_"),
            dtype=dtype,
        )

    def compile(self, model: Any, lr: float, *, jit: bool = False) -> None:
        import keras

        # Cross-entropy on ordinary targets (the same numbers as Keras's own sparse
        # cross-entropy, tested), unlikelihood on negative rows' targets.
        loss = caption_loss()
        # XLA fuses the recurrent time loop: ~1.1-1.8x more characters per second on CPU
        # (char-gru), after compiling once per padded length.
        model.compile(
            optimizer=keras.optimizers.Adam(lr, clipnorm=1.0),
            loss=loss,
            weighted_metrics=["accuracy"],
            jit_compile=jit,
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
        from training.batches import GRUBatches, encode_captions

        return GRUBatches(
            encode_captions(captions, vocab),
            np.array([templates.slot_of(c.template) for c in captions]),
            vocab.box_end_id,
            batch_size=batch_size,
            template_dropout=config.template_dropout if train else 0.0,
            shuffle=train,
            seed=seed,
        )

    def batches_with_negatives(
        self,
        captions: Sequence[Caption],
        negatives: Sequence[Caption],
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        negative_weight: float,
        seed: int = 0,
    ) -> Any:
        from training.batches import GRUBatches, encode_captions

        rows = [*captions, *negatives]
        return GRUBatches(
            encode_captions(rows, vocab),
            np.array([templates.slot_of(c.template) for c in rows]),
            vocab.box_end_id,
            batch_size=batch_size,
            template_dropout=config.template_dropout,
            shuffle=True,
            seed=seed,
            negative=np.arange(len(rows)) >= len(captions),
            negative_weight=negative_weight,
        )

    def fit_input(self, data: Any, *, repeat: bool) -> Any:
        return data.as_tf_dataset(repeat=repeat)

    def targets_per_batch(self, data: Any) -> float:
        return sum(len(t) for t in data.texts) / max(len(data), 1)

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
            x, y, w = data[i]
            logits = np.asarray(keras_model(x, training=False), dtype=np.float64)  # [B,T,V]
            logp = log_softmax(logits)
            tgt = np.take_along_axis(logp, y[..., None], -1)[..., 0]  # [B,T]
            correct = (logp.argmax(-1) == y) & (w > 0)
            yield (
                np.asarray(data.batches[i]),
                -(tgt * w).sum(axis=1),
                correct.sum(axis=1),
                w.sum(axis=1).astype(np.int64),
            )
