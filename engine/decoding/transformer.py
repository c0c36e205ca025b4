"""transformer's NumPy decoding step with a per-row KV cache, over weights.npz (no TensorFlow).

The state is `KVCache`: every fed position's attention keys and values, [L, 2, B, H, T, Dh]
(layers, key/value, rows, heads, positions, head width) with T = config.max_len fixed per row,
and each row's next position [B]. A step feeds one character per row: it computes that
position's query, key and value, writes the key and value into the row's cache and attends
over positions 0..pos. The prefix is never run again: a step's matmuls cost the same at
character 5 as at character 80, only the attention's dot products grow with it (linearly).

Rows of one batch sit at different positions (requests join between steps): each row writes
at its own position and masks the positions after it. A step writes into the cache it is
given (copying tens of MB per step would cost more than the step): a state is stepped once,
as Batch does, and `take_state` copies (beam search may continue one row twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.decoding.char_gru import condition
from memebot.artifact.configs import TransformerConfig
from memebot.artifact.weights import weight

LN_EPSILON = 1e-5  # training/models/transformer.py builds its LayerNormalizations with it
_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


@dataclass
class KVCache:
    kv: np.ndarray  # [L, 2, B, H, T, Dh] float32: keys (0) and values (1) of fed positions
    pos: np.ndarray  # [B] int64: the position each row's next character takes

    def __len__(self) -> int:
        return len(self.pos)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Keras' LayerNormalization over the last axis (biased variance)."""
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = (d * d).mean(axis=-1, keepdims=True)
    d *= 1.0 / np.sqrt(var + LN_EPSILON)
    d *= gamma
    d += beta
    return d


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (GPT-2's; keras.activations.gelu(approximate=True))."""
    return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + np.float32(0.044715) * x * x * x)))


@dataclass
class _Block:
    attn_norm: tuple[np.ndarray, np.ndarray]  # gamma, beta [D]
    qkv: tuple[np.ndarray, np.ndarray]  # [D, 3D], [3D]: queries, keys, values side by side
    attn_out: tuple[np.ndarray, np.ndarray]  # [D, D], [D]
    ff_norm: tuple[np.ndarray, np.ndarray]
    ff_in: tuple[np.ndarray, np.ndarray]  # [D, F], [F]
    ff_out: tuple[np.ndarray, np.ndarray]  # [F, D], [D]


class TransformerStepper:
    """NumPy incremental decoder over a trained `transformer` model's weights (by variable
    path); conditioning is char-gru's (the template's slot, 0 = any template)."""

    returns_logp = False  # step returns logits (LoadedModel.step log-softmaxes them)

    def __init__(self, weights: dict[str, np.ndarray], config: TransformerConfig):
        def get(suffix: str) -> np.ndarray:
            return np.ascontiguousarray(weight(weights, suffix), dtype=np.float32)

        def pair(name: str, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
            return get(f"{name}/{a}"), get(f"{name}/{b}")

        self.config = config
        self.heads, self.head_dim = config.heads, config.d_model // config.heads
        self.max_chars = config.max_len  # positions: the longest text a row can be fed
        self.char_emb = get("char_emb/embeddings")  # [V, D]
        self.box_emb = get("box_emb/embeddings")  # [max_boxes, D]
        self.template_emb = get("template_emb/embeddings")  # [slots, D]
        self.pos_emb = get("pos_emb/embeddings")  # [T, D]
        self.blocks = [
            _Block(
                pair(f"block_{i}/attn_norm", "gamma", "beta"),
                pair(f"block_{i}/qkv", "kernel", "bias"),
                pair(f"block_{i}/attn_out", "kernel", "bias"),
                pair(f"block_{i}/ff_norm", "gamma", "beta"),
                pair(f"block_{i}/ff_in", "kernel", "bias"),
                pair(f"block_{i}/ff_out", "kernel", "bias"),
            )
            for i in range(config.layers)
        ]
        self.final_norm = pair("final_norm", "gamma", "beta")
        self.out_w, self.out_b = pair("logits", "kernel", "bias")  # [D, V], [V]

    condition = staticmethod(condition)

    def initial_state(self, batch: int) -> KVCache:
        c = self.config
        shape = (c.layers, 2, batch, self.heads, c.max_len, self.head_dim)
        return KVCache(np.zeros(shape, dtype=np.float32), np.zeros(batch, dtype=np.int64))

    def take_state(self, state: KVCache, idx: np.ndarray) -> KVCache:
        """Rows `idx` (repeats allowed: beam search), their caches copied, except when `idx`
        keeps the first rows in order (the common step: nobody finished), a view then."""
        idx = np.asarray(idx, dtype=np.int64)
        n = len(idx)
        if n <= len(state) and (idx == np.arange(n)).all():
            return state if n == len(state) else KVCache(state.kv[:, :, :n], state.pos[:n])
        pos = state.pos[idx]
        kv = np.zeros((*state.kv.shape[:2], n, *state.kv.shape[3:]), dtype=np.float32)
        used = int(pos.max(initial=0))  # positions past every kept row's are zero anyway
        kv[:, :, :, :, :used] = state.kv[:, :, idx, :, :used]
        return KVCache(kv, pos)

    def concat_states(self, states: list[KVCache]) -> KVCache:
        return KVCache(
            np.concatenate([s.kv for s in states], axis=2),
            np.concatenate([s.pos for s in states]),
        )

    def step(
        self, state: KVCache, chars: np.ndarray, boxes: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, KVCache]:
        """One character for each row: ids [B] -> (logits [B,V], the state one position on).
        Writes the new keys and values into `state.kv`."""
        B, pos = len(chars), state.pos
        if len(pos) != B:
            raise ValueError(f"{B} characters for a state of {len(pos)} rows")
        H, Dh = self.heads, self.head_dim
        D = H * Dh
        if B and int(pos.max()) >= self.max_chars:
            raise ValueError(f"a row is past the model's {self.max_chars} positions (max_len)")
        boxes = np.minimum(boxes, self.config.max_boxes - 1)
        x = self.char_emb[chars] + self.box_emb[boxes]  # [B,D]
        x += self.template_emb[slots]
        x += self.pos_emb[pos]
        used = int(pos.max()) + 1 if B else 1  # positions any row attends to
        # [B,1,used]: 0 where a row may attend (its own position and before), -inf after
        bias = np.where(np.arange(used)[None, :] > pos[:, None], -np.inf, 0.0).astype(np.float32)
        bias = bias[:, None, :]
        rows, scale = np.arange(B), np.float32(1.0 / np.sqrt(Dh))
        for i, blk in enumerate(self.blocks):
            h = layer_norm(x, *blk.attn_norm)
            qkv = h @ blk.qkv[0]
            qkv += blk.qkv[1]
            qkv = qkv.reshape(B, 3, H, Dh)
            keys, values = state.kv[i, 0], state.kv[i, 1]  # [B,H,T,Dh] views
            keys[rows, :, pos] = qkv[:, 1]  # this position's key and value, per row
            values[rows, :, pos] = qkv[:, 2]
            q = qkv[:, 0] * scale  # [B,H,Dh]
            scores = np.matmul(keys[:, :, :used], q[..., None])[..., 0]  # [B,H,used]
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            att = np.matmul(scores[:, :, None, :], values[:, :, :used])  # [B,H,1,Dh]
            o = att.reshape(B, D) @ blk.attn_out[0]
            o += blk.attn_out[1]
            x += o
            h = layer_norm(x, *blk.ff_norm)
            f = h @ blk.ff_in[0]
            f += blk.ff_in[1]
            f = gelu(f) @ blk.ff_out[0]
            f += blk.ff_out[1]
            x += f
        logits = layer_norm(x, *self.final_norm) @ self.out_w  # [B,V]
        logits += self.out_b
        return logits, KVCache(state.kv, pos + 1)
