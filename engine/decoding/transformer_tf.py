"""transformer's decoding step in TensorFlow ops: the tf decoder's cell (tf_step.py compiles it).

The same arithmetic as the NumPy KV-cache step (transformer.py), in float32, from the same
weights. The cache is per row and of fixed size, [B, L, 2, H, T, Dh] (layers, key/value,
heads, positions, head width), with each row's next position [B]: plain per-row state, so
TFStepper's gathers and concatenations move a row's cache with it (rows joining, leaving,
beam repeats) and XLA sees one shape per row bucket. A step writes the new key and value at
each row's position through a one-hot mask (no scatter: the same program for every position)
and attends over all T positions with the later ones masked: on a GPU, T = 96 costs no more
than the prefix would. Per row the cache is L x 2 x T x D float32 (786 KB at the default
config, 200 MB for 256 rows), which is why the NumPy step keeps slots instead and this one is
for a GPU. Imports TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from engine.decoding.char_gru import condition
from engine.decoding.tf_step import State, StateSpec
from engine.decoding.transformer import LN_EPSILON
from memebot.artifact.configs import TransformerConfig
from memebot.artifact.weights import weight

# A masked position's score: exp() of it is exactly 0 in float32, as -inf is in the NumPy
# step, without risking inf - inf = NaN in a padded row.
MASKED = -1e30


def _layer_norm(x: Any, gamma: Any, beta: Any) -> Any:
    mu = tf.reduce_mean(x, axis=-1, keepdims=True)
    d = x - mu
    var = tf.reduce_mean(d * d, axis=-1, keepdims=True)
    return d * tf.math.rsqrt(var + LN_EPSILON) * gamma + beta


def _gelu(x: Any) -> Any:
    c = float(np.sqrt(2.0 / np.pi))
    return 0.5 * x * (1.0 + tf.tanh(c * (x + 0.044715 * x * x * x)))


class TransformerCell:
    """A TFCell over a `transformer` model's weights (weights.npz), as TF variables on the
    device scope it is built in. State: the KV cache [B, L, 2, H, T, Dh] and positions [B]."""

    condition = staticmethod(condition)

    def __init__(self, weights: dict[str, np.ndarray], config: TransformerConfig):
        def var(suffix: str) -> tf.Variable:
            value = np.asarray(weight(weights, suffix), np.float32)
            return tf.Variable(value, trainable=False, name=suffix.replace("/", "_"))

        self.config = config
        self.heads, self.head_dim = config.heads, config.d_model // config.heads
        self.max_chars = config.max_len  # read by LoadedModel.max_chars, as the NumPy step's
        self.char_emb = var("char_emb/embeddings")  # [V, D]
        self.box_emb = var("box_emb/embeddings")  # [max_boxes, D]
        self.template_emb = var("template_emb/embeddings")  # [slots, D]
        self.pos_emb = var("pos_emb/embeddings")  # [T, D]
        names = ("attn_norm", "qkv", "attn_out", "ff_norm", "ff_in", "ff_out")
        self.blocks = []
        for i in range(config.layers):
            blk = {}
            for n in names:
                a, b = ("gamma", "beta") if n.endswith("norm") else ("kernel", "bias")
                blk[n] = (var(f"block_{i}/{n}/{a}"), var(f"block_{i}/{n}/{b}"))
            self.blocks.append(blk)
        self.final_norm = (var("final_norm/gamma"), var("final_norm/beta"))
        self.out_w, self.out_b = var("logits/kernel"), var("logits/bias")  # [D, V], [V]
        self.n_chars = int(self.out_b.shape[0])
        self.n_conds = int(self.template_emb.shape[0])
        L, H, T, Dh = config.layers, self.heads, config.max_len, self.head_dim
        self.state_spec: StateSpec = (((L, 2, H, T, Dh), tf.float32), ((), tf.int32))

    def step(self, state: State, chars: Any, boxes: Any, conds: Any) -> tuple[Any, State]:
        """ids [B] -> (logits [B,V], (cache with this position written, positions + 1)).
        A row fed past its T positions writes nothing (its one-hot is all zeros); the engine
        never feeds one (max_len is cut to T, LoadedModel.max_chars)."""
        kv, pos = state  # [B,L,2,H,T,Dh], [B]
        c, H, Dh = self.config, self.heads, self.head_dim
        T, D = c.max_len, c.d_model
        x = tf.gather(self.char_emb, chars)  # [B,D]
        x += tf.gather(self.box_emb, tf.minimum(boxes, c.max_boxes - 1))
        x += tf.gather(self.template_emb, conds)
        x += tf.gather(self.pos_emb, tf.minimum(pos, T - 1))
        here = tf.one_hot(pos, T, dtype=tf.float32)[:, None, :, None]  # [B,1,T,1]
        # [B,1,T]: 0 where a row may attend (its position and before), MASKED after
        later = tf.range(T)[None, :] > pos[:, None]
        bias = tf.where(later, MASKED, 0.0)[:, None, :]
        scale = 1.0 / float(np.sqrt(Dh))
        caches = []
        for i, blk in enumerate(self.blocks):
            h = _layer_norm(x, *blk["attn_norm"])
            qkv = tf.reshape(tf.matmul(h, blk["qkv"][0]) + blk["qkv"][1], [-1, 3, H, Dh])
            q, k, v = qkv[:, 0] * scale, qkv[:, 1], qkv[:, 2]  # [B,H,Dh] each
            keys = kv[:, i, 0] * (1.0 - here) + here * k[:, :, None, :]  # [B,H,T,Dh]
            values = kv[:, i, 1] * (1.0 - here) + here * v[:, :, None, :]
            scores = tf.einsum("bhd,bhtd->bht", q, keys) + bias  # [B,H,T]
            att = tf.einsum("bht,bhtd->bhd", tf.nn.softmax(scores, axis=-1), values)
            x += tf.matmul(tf.reshape(att, [-1, D]), blk["attn_out"][0]) + blk["attn_out"][1]
            h = _layer_norm(x, *blk["ff_norm"])
            f = _gelu(tf.matmul(h, blk["ff_in"][0]) + blk["ff_in"][1])
            x += tf.matmul(f, blk["ff_out"][0]) + blk["ff_out"][1]
            caches.append(tf.stack([keys, values], axis=1))  # [B,2,H,T,Dh]
        logits = tf.matmul(_layer_norm(x, *self.final_norm), self.out_w) + self.out_b
        return logits, (tf.stack(caches, axis=1), pos + 1)
