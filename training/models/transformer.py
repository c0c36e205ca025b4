"""`transformer`: a small causal character transformer (its Keras graph), standing in for the
fine-tuned GPT-2 of the LSTM-vs-GPT-2 seed, whose pretrained weights cannot be fetched here.

GPT-2's shape at character scale: pre-norm blocks (LayerNorm -> causal self-attention ->
residual, LayerNorm -> GELU feed-forward -> residual), learned positions, a final LayerNorm.
Conditioning is char-gru's: the template slot's and the box index's embeddings are added to
every position's character and position embeddings. Training is the recurrent models' too
(recurrent.py: whole captions, teacher forcing, the same batches and eval pass); decoding steps
one character at a time on a per-row KV cache (engine/decoding/transformer.py, NumPy) over the
same weights.

Padding: batches are right-padded (training/batches.py), so under the causal mask a real
position never attends to a pad; pad positions' outputs are weighted 0 in the loss and the
metrics. No padding mask is needed (tested: logits do not depend on the padding).
"""

from __future__ import annotations

import functools
from typing import Any

from engine.decoding.model import Stepper
from engine.decoding.transformer import LN_EPSILON, TransformerStepper
from memebot.artifact.configs import TransformerConfig
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.errors import UsageError
from training.models.recurrent import RecurrentArch, caption_loss, weights_of

INIT_STD = 0.02  # GPT-2's initialisation; residual output projections get / sqrt(2 * layers)


@functools.cache
def _layers() -> tuple[type, type]:
    """The two custom layers, defined on first use: this module is imported before TensorFlow
    is (flags are checked first, training/train.py)."""
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="memebot.transformer")
    class PositionEmbedding(layers.Layer):
        """Adds a learned vector per position: [B,T,D] -> [B,T,D], T <= max_len."""

        def __init__(self, max_len: int, **kwargs: Any):
            super().__init__(**kwargs)
            self.max_len = max_len

        def build(self, input_shape: Any) -> None:
            self.embeddings = self.add_weight(
                shape=(self.max_len, input_shape[-1]),
                initializer=keras.initializers.RandomNormal(stddev=INIT_STD / 2),
                name="embeddings",
            )

        def call(self, x: Any) -> Any:
            t = ops.shape(x)[1]
            return x + ops.cast(self.embeddings[:t], x.dtype)[None]

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "max_len": self.max_len}

    @keras.saving.register_keras_serializable(package="memebot.transformer")
    class Block(layers.Layer):
        """One pre-norm decoder block: [B,T,D] -> [B,T,D]."""

        def __init__(
            self, d_model: int, heads: int, ff: int, dropout: float, depth: int, **kwargs: Any
        ):
            super().__init__(**kwargs)
            self.d_model, self.heads, self.ff, self.dropout, self.depth = (
                d_model,
                heads,
                ff,
                dropout,
                depth,
            )
            policy = self.dtype_policy
            init = keras.initializers.RandomNormal(stddev=INIT_STD)
            out_init = keras.initializers.RandomNormal(stddev=INIT_STD / (2 * depth) ** 0.5)

            def norm(name: str) -> Any:
                return layers.LayerNormalization(epsilon=LN_EPSILON, name=name, dtype=policy)

            def dense(width: int, name: str, ini: Any, act: Any = None) -> Any:
                return layers.Dense(
                    width, activation=act, kernel_initializer=ini, name=name, dtype=policy
                )

            self.attn_norm = norm("attn_norm")
            self.qkv = dense(3 * d_model, "qkv", init)  # queries, keys, values side by side
            self.attn_out = dense(d_model, "attn_out", out_init)
            self.ff_norm = norm("ff_norm")
            gelu = functools.partial(keras.activations.gelu, approximate=True)
            self.ff_in = dense(ff, "ff_in", init, gelu)
            self.ff_out = dense(d_model, "ff_out", out_init)
            self.drop = layers.Dropout(dropout, dtype=policy)

        def build(self, input_shape: Any) -> None:
            d, f = self.d_model, self.ff
            for norm, width in ((self.attn_norm, d), (self.ff_norm, d)):
                norm.build((None, None, width))
            self.qkv.build((None, None, d))
            self.attn_out.build((None, None, d))
            self.ff_in.build((None, None, d))
            self.ff_out.build((None, None, f))

        def call(self, x: Any, training: bool | None = None) -> Any:
            H, Dh = self.heads, self.d_model // self.heads
            t = ops.shape(x)[1]
            qkv = ops.reshape(self.qkv(self.attn_norm(x)), (-1, t, 3, H, Dh))
            qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # [3,B,H,T,Dh]
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # [B,H,T,T]
            # Softmax in float32 (also under mixed_bfloat16): -1e9 after the query's position.
            scores = ops.cast(scores, "float32") * (1.0 / Dh**0.5)
            i = ops.arange(t)
            future = ops.expand_dims(i, 0) > ops.expand_dims(i, 1)  # [T(query), T(key)]
            scores = ops.where(future, -1e9, scores)
            att = ops.cast(ops.softmax(scores, axis=-1), v.dtype)
            o = ops.transpose(ops.matmul(att, v), (0, 2, 1, 3))  # [B,T,H,Dh]
            o = ops.reshape(o, (-1, t, self.d_model))
            x = x + self.drop(self.attn_out(o), training=training)
            f = self.ff_out(self.ff_in(self.ff_norm(x)))
            return x + self.drop(f, training=training)

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "d_model": self.d_model,
                "heads": self.heads,
                "ff": self.ff,
                "dropout": self.dropout,
                "depth": self.depth,
            }

    return PositionEmbedding, Block


def build(
    config: TransformerConfig, vocab_size: int, n_slots: int, *, dtype: str | None = None
):  # -> keras.Model
    """`dtype`: a Keras dtype policy for everything but the logits ("mixed_bfloat16": matmuls
    in bfloat16, LayerNorm statistics and the attention softmax in float32). Variables are
    float32 under every policy, so weights move freely between precisions."""
    import keras
    from keras import layers, ops

    PositionEmbedding, Block = _layers()
    D = config.d_model
    emb = keras.initializers.RandomNormal(stddev=INIT_STD)
    chars = keras.Input((None,), dtype="int32", name="chars")  # [B,T]: BOS + text[:-1]
    boxes = keras.Input((None,), dtype="int32", name="boxes")  # [B,T]: box index per position
    template = keras.Input((), dtype="int32", name="template")  # [B]: conditioning slot

    def embedding(n: int, name: str) -> Any:
        return layers.Embedding(n, D, embeddings_initializer=emb, name=name, dtype=dtype)

    x = embedding(vocab_size, "char_emb")(chars)  # [B,T,D]
    x = x + embedding(config.max_boxes, "box_emb")(ops.minimum(boxes, config.max_boxes - 1))
    x = x + ops.expand_dims(embedding(n_slots, "template_emb")(template), 1)  # [B,1,D]
    x = PositionEmbedding(config.max_len, name="pos_emb", dtype=dtype)(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, dtype=dtype)(x)
    for i in range(config.layers):
        c = config
        x = Block(D, c.heads, c.ff, c.dropout, c.layers, name=f"block_{i}", dtype=dtype)(x)
    x = layers.LayerNormalization(epsilon=LN_EPSILON, name="final_norm", dtype=dtype)(x)
    logits = layers.Dense(vocab_size, name="logits", dtype="float32")(x)  # [B,T,V]
    return keras.Model(
        {"chars": chars, "boxes": boxes, "template": template}, logits, name="transformer"
    )


class Transformer(RecurrentArch):
    """The recurrent models' training data, evaluation and conditioning (whole captions,
    teacher forcing: RecurrentArch); its own graph, optimizer and decoding step (it has no
    recurrent layer)."""

    name = "transformer"
    config_class = TransformerConfig
    default_lr = 1e-3
    # On a CPU with bfloat16 dot products (AVX512-BF16), a 256x48 batch at the default config
    # took 2.8 s in mixed_bfloat16 against 4.0 s in float32 (one core), so --precision auto
    # picks it there; --xla took 3.7 s (the matmuls dominate; nothing left worth fusing).
    # float32 on other CPUs and on GPUs.
    precisions = ("float32", "mixed_bfloat16")

    def build(
        self, config: Any, vocab: Vocab, templates: TemplateTable, *, precision: str = "float32"
    ) -> Any:
        self.check_precision(precision)
        dtype = None if precision == "float32" else precision
        return build(config, vocab.size, templates.n_slots, dtype=dtype)

    def compile(self, model: Any, lr: float, *, jit: bool = False) -> None:
        import keras

        loss = caption_loss()  # cross-entropy; unlikelihood on negative rows (recurrent.py)
        # beta_2 0.98: the second-moment estimate follows the attention logits' early growth
        # sooner than 0.999 (the usual transformer setting); warmup: `callbacks`.
        model.compile(
            optimizer=keras.optimizers.Adam(lr, beta_2=0.98, clipnorm=1.0),
            loss=loss,
            weighted_metrics=["accuracy"],
            jit_compile=jit,
        )

    def batches(
        self,
        captions: Any,
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        train: bool,
        seed: int = 0,
    ) -> Any:
        longest = max((len(c.text) for c in captions), default=0)
        if longest > config.max_len:
            raise UsageError(
                f"--set max_len={config.max_len}: a caption has {longest} characters; "
                "the transformer's positions must cover the longest"
            )
        return super().batches(
            captions, vocab, templates, config, batch_size=batch_size, train=train, seed=seed
        )

    def callbacks(self, config: Any, lr: float) -> list[Any]:
        from training.schedules import LinearWarmup

        return [LinearWarmup(lr, config.warmup_steps)] if config.warmup_steps else []

    def stepper(self, keras_model: Any, config: Any, vocab: Vocab) -> Stepper:
        return TransformerStepper(weights_of(keras_model), config)
