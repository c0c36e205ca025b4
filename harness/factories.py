"""Small things the tests and benchmarks build: an ImgFlip575K-layout dataset, tiny trained
models, settings for a scratch directory, each request decoded alone (the reference for
batching), and a gate that holds a model's steps."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np

from memebot.settings import Settings
from memebot.store import NewGeneration, Store


def scratch_env(tmp_path: Path) -> dict[str, str]:
    """MEMEBOT_* variables that keep every file under `tmp_path` (cache, store, queue, models)
    and never touch the network (no image downloads): for settings and for `memebot`
    subprocesses alike."""
    return {
        "MEMEBOT_CACHE_DIR": str(tmp_path / "cache"),
        "MEMEBOT_IMAGES_DIR": str(tmp_path / "no-images"),
        "MEMEBOT_DOWNLOAD_IMAGES": "0",
        "MEMEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "MEMEBOT_MEME_COOLDOWN": "0",
        "MEMEBOT_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        "MEMEBOT_MODELS_DIR": str(tmp_path / "models"),
    }


def scratch_settings(tmp_path: Path, **over: Any) -> Settings:
    """Settings from `scratch_env` (nothing else of the environment); `over` replaces fields
    (`model_copy(update=...)`)."""
    return Settings.from_env(scratch_env(tmp_path)).model_copy(update=over)


SUBJECTS = [
    "my dog",
    "the teacher",
    "my mom",
    "a cat",
    "my boss",
    "the internet",
    "my friend",
    "dad",
]
VERBS = ["eats", "forgets", "finds", "loves", "hates", "steals", "breaks", "fixes"]
OBJECTS = [
    "the homework",
    "my pizza",
    "the wifi",
    "all the memes",
    "my phone",
    "the car",
    "a sandwich",
]
ENDINGS = [
    "every single day",
    "and nobody cares",
    "again",
    "on a monday",
    "like a boss",
    "at school",
]


def _caption(rng: random.Random, n_boxes: int) -> list[str]:
    boxes = [f"when {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"]
    boxes += [f"{rng.choice(SUBJECTS)} {rng.choice(ENDINGS)}" for _ in range(n_boxes - 1)]
    return boxes


def make_imgflip_dir(root: Path, *, per_template: int = 150, seed: int = 0) -> Path:
    """Three templates with captions (1, 2 and 2 boxes) and one, distracted-boyfriend, with none."""
    rng = random.Random(seed)
    (root / "memes").mkdir(parents=True)
    (root / "templates").mkdir()
    spec = {"Success-Kid": (61544, 1), "Two-Buttons": (87743020, 2), "Y-U-No": (61527, 2)}
    for name, (_tid, boxes) in spec.items():
        memes = [
            {
                "url": "",
                "post": "",
                "metadata": {"views": "1,024", "img-votes": 3},
                "boxes": [b.upper() for b in _caption(rng, boxes)],
            }
            for _ in range(per_template)
        ]
        (root / "memes" / f"{name}.json").write_text(json.dumps(memes))
    for name, tid in [*((n, t) for n, (t, _) in spec.items()), ("Distracted-Boyfriend", 112126428)]:
        (root / "templates" / f"{name}.json").write_text(
            json.dumps(
                {
                    "title": f"{name.replace('-', ' ')} Meme Template",
                    "template_id": str(tid),
                    "alternative_names": "alias one, alias two"
                    if name != "Distracted-Boyfriend"
                    else "distracted bf",
                }
            )
        )
    return root


def train_tiny(data: Path, out: Path, **options: Any) -> Path:
    """A small char-gru trained for seconds on `data`; `options` override TrainOptions fields
    (`arch` and `overrides` for another architecture)."""
    from training.train import TrainOptions, train

    settings: dict[str, Any] = {
        "epochs": 6,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "overrides": {"hidden": "48", "layers": "1", "char_emb": "16"},
        "verbose": 0,
        "patience": 10,
        "precision": "float32",  # the same arithmetic on every machine (bfloat16: own test)
    }
    return train(TrainOptions(data=data, out=out, **(settings | options)), echo=lambda _s: None)


class StepGate:
    """Holds a real model's decoding steps until `opened` is set, so requests stay in flight
    for as long as a test needs, with no timing involved. `waiting` is set once a step waits."""

    def __init__(self, model: Any):
        self.opened = threading.Event()
        self.waiting = threading.Event()
        inner = model.step

        def step(*args: Any, **kwargs: Any) -> Any:
            self.waiting.set()
            if not self.opened.wait(timeout=120):
                raise RuntimeError("StepGate: the test never opened the gate")
            return inner(*args, **kwargs)

        model.step = step


def tilt_states(texts: list[str]) -> np.ndarray:
    """Rows' taste-tilt states [len(texts), tilt.WIDTH] after each of `texts`
    (engine/decoding/tilt.py)."""
    from engine.decoding import tilt

    state = tilt.fresh(len(texts))
    for i, text in enumerate(texts):
        row = state[i : i + 1].copy()
        tilt.append_text(row, text)
        state[i] = row[0]
    return state


def captions_alone(model: Any, reqs: list[Any]) -> list[list[list[str]]]:
    """Each request decoded by itself: the boxes of its captions (the reference for batching)."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import make_job

    out = []
    for r in reqs:
        job = make_job(model, r)
        run_jobs(model, [job])
        out.append([c.boxes for c in job.captions()])
    return out


TASTE_WORDS = ["monday", "coffee", "boss", "homework", "meeting", "weekend", "code", "bug", "wifi"]


async def rate_memes(
    store: Store,
    guild: int,
    n: int,
    *,
    topic: str = "cat",
    start: int = 0,
    seed: int,
    first_message: int,
) -> None:
    """Memes `start`..`start + n - 1` in `guild` with one vote each by a member (never the
    requester): every third caption is about `topic` and liked, the others disliked. `seed`
    picks the other words; message ids count up from `first_message + start`."""
    rng = np.random.default_rng(seed)
    for i in range(start, start + n):
        words = [str(w) for w in rng.choice(TASTE_WORDS, size=4)]
        liked = i % 3 == 0
        if liked:
            words[int(rng.integers(4))] = topic
        msg = first_message + i
        await store.record_generation(
            NewGeneration(
                guild_id=guild,
                channel_id=5,
                user_id=1,
                template=f"t{i % 4}",
                boxes=[" ".join(words[:2]), " ".join(words[2:])],
                message_id=msg,
            )
        )
        await store.set_vote(msg, 2 + i % 5, 1 if liked else -1)


def rewrite_npz(path: Path, **arrays: np.ndarray) -> None:
    """Replaces (or adds) arrays of a saved .npz in place: how the scorer-file tests forge a
    file that is corrupt, of another model or of another format."""
    with np.load(path, allow_pickle=False) as z:
        parts = {k: z[k] for k in z.files}
    parts.update(arrays)
    np.savez(path, **parts)


def npz_header(path: Path) -> dict[str, object]:
    """The JSON header of a scorer file (memebot/scorer_file.py)."""
    with np.load(path, allow_pickle=False) as z:
        out = json.loads(str(z["header"][()]))
    assert isinstance(out, dict)
    return out
