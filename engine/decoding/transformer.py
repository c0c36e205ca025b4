"""transformer's NumPy decoding step with a per-row KV cache, over weights.npz (no TensorFlow).

The state is `KVCache`: every fed position's attention keys and values in a store of slots,
[L, 2, S, H, T, Dh] (layers, key/value, slots, heads, positions, head width) with T =
config.max_len fixed per row, plus each row's slot and next position. A step feeds one
character per row: it computes that position's query, key and value, writes the key and value
into the row's slot and attends over positions 0..pos. The prefix is never run again: a step's
matmuls cost the same at character 5 as at character 80; only the attention's dot products
grow with it (linearly).

Rows of one batch sit at different positions (requests join between steps): each row writes
at its own position and masks the positions after it (a masked position may hold a former
row's finite values: its weight is exactly 0). Rows move without their caches moving: a row
leaving frees its slot, a row joining takes a free one, a reorder permutes `slot`. Only a row
continued twice (beam search) copies its cache, into a free slot; the store grows when none is
free and is compacted once it is less than half used, so attention (over every slot: no
gathering of caches) never does more than twice the rows' work. Copying whole caches on every
finished row instead cost twice the step at 64 rows.

A step writes into the store of the state it is given, and `take_state`/`concat_states` reuse
it: a state is used once, as Batch does (step, then take, then step...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.decoding.char_gru import condition
from memebot.artifact.configs import TransformerConfig
from memebot.artifact.weights import weight

LN_EPSILON = 1e-5  # training/models/transformer.py builds its LayerNormalizations with it
_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


MIN_SLOTS = 8  # a store this small is never compacted


@dataclass
class KVCache:
    kv: np.ndarray  # [L, 2, S, H, T, Dh] float32: keys (0) and values (1), S slots
    slot: np.ndarray  # [B] int64: each row's slot, distinct; the other slots are free
    pos: np.ndarray  # [B] int64: the position each row's next character takes

    def __len__(self) -> int:
        return len(self.pos)

    @property
    def slots(self) -> int:
        return int(self.kv.shape[2])


def _free_slots(kv: np.ndarray, taken: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` slots of `kv` not in `taken`, the store grown (by half at least) if it has fewer."""
    S = kv.shape[2]
    free = np.setdiff1d(np.arange(S), taken)
    if len(free) < n:
        grow = max(n - len(free), S // 2)
        extra = np.zeros((*kv.shape[:2], grow, *kv.shape[3:]), dtype=kv.dtype)
        kv = np.concatenate([kv, extra], axis=2)
        free = np.concatenate([free, np.arange(S, S + grow)])
    return kv, free[:n]


def _copy_rows(dst: np.ndarray, dst_slots: np.ndarray, src: KVCache, rows: np.ndarray) -> None:
    """The fed positions of `src`'s `rows` into `dst`'s `dst_slots`."""
    fed = int(src.pos[rows].max(initial=0))
    if fed:
        dst[:, :, dst_slots, :, :fed] = src.kv[:, :, src.slot[rows], :, :fed]


def _own_slots(kv: np.ndarray, slot: np.ndarray, pos: np.ndarray) -> KVCache:
    """Rows sharing a slot (beam search continuing a row twice): all but the first get a copy
    of it in a free slot."""
    _, first = np.unique(slot, return_index=True)
    if len(first) == len(slot):
        return KVCache(kv, slot, pos)
    again = np.ones(len(slot), dtype=bool)
    again[first] = False
    rows = np.flatnonzero(again)
    kv, free = _free_slots(kv, slot, len(rows))
    _copy_rows(kv, free, KVCache(kv, slot, pos), rows)
    slot = slot.copy()
    slot[rows] = free
    return KVCache(kv, slot, pos)


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
    backend = "numpy"

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
        zeros = np.zeros(batch, dtype=np.int64)
        return KVCache(np.zeros(shape, dtype=np.float32), np.arange(batch), zeros)

    def take_state(self, state: KVCache, idx: np.ndarray) -> KVCache:
        """Rows `idx` (repeats allowed: beam search): slots follow their rows; a repeated row
        gets a copy; a store less than half used is compacted."""
        idx = np.asarray(idx, dtype=np.int64)
        n = len(idx)
        if n == len(state) and (idx == np.arange(n)).all():
            return state
        if n == 0:
            return self.initial_state(0)
        if 2 * n < state.slots and state.slots > MIN_SLOTS:
            out = self.initial_state(n)
            _copy_rows(out.kv, out.slot, state, idx)
            return KVCache(out.kv, out.slot, state.pos[idx])
        return _own_slots(state.kv, state.slot[idx], state.pos[idx])

    def concat_states(self, states: list[KVCache]) -> KVCache:
        """Rows of `states` in order. The largest store is kept; rows of other stores (requests
        joining: fresh, so nothing to copy but their positions) move into its free slots."""
        states = [s for s in states if len(s)]
        if not states:
            return self.initial_state(0)
        base = max(states, key=lambda s: s.slots)
        foreign = [s for s in states if s.kv is not base.kv]
        kept = [s.slot for s in states if s.kv is base.kv]
        kv, free = _free_slots(base.kv, np.concatenate(kept), sum(len(s) for s in foreign))
        slots, at = [], 0
        for s in states:
            if s.kv is base.kv:
                slots.append(s.slot)
                continue
            new = free[at : at + len(s)]
            _copy_rows(kv, new, s, np.arange(len(s)))
            slots.append(new)
            at += len(s)
        return _own_slots(kv, np.concatenate(slots), np.concatenate([s.pos for s in states]))

    def step(
        self, state: KVCache, chars: np.ndarray, boxes: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, KVCache]:
        """One character for each row: ids [B] -> (logits [B,V], the state one position on).
        Writes the new keys and values into `state.kv` (the rows' slots)."""
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
        # Attention runs over every slot of the store (free ones too, their output unused):
        # no gathering of caches. `q_all`: each row's query in its slot's place.
        slot, S = state.slot, state.slots
        scale = np.float32(1.0 / np.sqrt(Dh))
        in_place = S == B and bool((slot == np.arange(B)).all())
        used = int(pos.max()) + 1 if B else 1  # positions any row attends to
        pos_all = np.zeros(S, dtype=np.int64)
        pos_all[slot] = pos
        # [S,1,used]: 0 where a slot's row may attend (its position and before), -inf after
        bias = np.where(np.arange(used)[None, :] > pos_all[:, None], -np.inf, 0.0)
        bias = bias.astype(np.float32)[:, None, :]
        q_all = np.zeros((S, H, Dh), dtype=np.float32)
        for i, blk in enumerate(self.blocks):
            h = layer_norm(x, *blk.attn_norm)
            qkv = h @ blk.qkv[0]
            qkv += blk.qkv[1]
            qkv = qkv.reshape(B, 3, H, Dh)
            keys, values = state.kv[i, 0], state.kv[i, 1]  # [S,H,T,Dh] views
            keys[slot, :, pos] = qkv[:, 1]  # this position's key and value, per row
            values[slot, :, pos] = qkv[:, 2]
            if in_place:
                q_all = qkv[:, 0] * scale  # [S=B,H,Dh]
            else:
                q_all[slot] = qkv[:, 0] * scale
            scores = np.matmul(keys[:, :, :used], q_all[..., None])[..., 0]  # [S,H,used]
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            att = np.matmul(scores[:, :, None, :], values[:, :, :used])  # [S,H,1,Dh]
            if not in_place:
                att = att[slot]
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
        return logits, KVCache(state.kv, slot, pos + 1)
