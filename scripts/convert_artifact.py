"""Adds weights.npz (framework-free weights) to an artifact made before it existed.

Serving reads weights.npz and imports no TensorFlow; artifacts from before 2026-11-29 carry
only model.keras. This loads model.keras (needs the `train` extra), writes its weights as
float32 arrays by Keras variable path, checks them against the config, records the checksum in
meta.json, and swaps the amended copy in by rename: the artifact is never half-converted.
model.keras stays (training, evaluation and fine-tuning read it), unless --drop-keras: then
training rebuilds the Keras model from the config and reads weights.npz (how models/default
stays within its 10 MB).

    .venv/bin/python scripts/convert_artifact.py models/default [--drop-keras]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from memebot.artifact.meta import ArtifactMeta, amend_artifact, read_meta
from memebot.artifact.weights import WEIGHTS_FILE, check_weights, load_weights, save_weights
from memebot.errors import ArtifactError, MemebotError


def convert(path: Path, *, drop_keras: bool = False) -> bool:
    """Add weights.npz to the artifact at `path` (and with `drop_keras` remove model.keras once
    the npz rebuilds the same Keras weights); False when there was nothing to do."""
    meta = read_meta(path)  # refuses a directory that is not a (valid) artifact
    has_keras = "model.keras" in meta.files
    if WEIGHTS_FILE in meta.files and not (drop_keras and has_keras):
        return False
    if not has_keras:
        raise ArtifactError(f"{path}: has no model.keras to convert")
    from training.trained import assign_weights, load_trained

    trained = load_trained(path)
    weights = trained.arch.export_weights(trained.keras_model)
    if drop_keras:  # the npz alone must give back every weight, bit for bit
        fresh = trained.arch.build(trained.config, trained.vocab, trained.templates)
        assign_weights(fresh, weights, path / WEIGHTS_FILE)
        for a, b in zip(fresh.weights, trained.keras_model.weights, strict=True):
            if not np.array_equal(np.asarray(a.numpy()), np.asarray(b.numpy())):
                raise ArtifactError(f"{path}: {a.path} differs when rebuilt from {WEIGHTS_FILE}")

    def edit(tmp: Path, meta: ArtifactMeta) -> None:
        save_weights(tmp / WEIGHTS_FILE, weights)
        n_slots = trained.templates.n_slots
        check_weights(
            load_weights(tmp / WEIGHTS_FILE),
            trained.config,
            trained.vocab.size,
            n_slots,
            tmp / WEIGHTS_FILE,
        )
        meta.files[WEIGHTS_FILE] = ""  # amend_artifact computes every listed checksum
        if drop_keras:
            (tmp / "model.keras").unlink()
            del meta.files["model.keras"]

    amend_artifact(path, edit)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("model", type=Path, help="artifact directory to convert in place")
    p.add_argument(
        "--drop-keras",
        action="store_true",
        help="remove model.keras once weights.npz holds the same weights (smaller artifact)",
    )
    args = p.parse_args(argv)
    try:
        from memebot.tfquiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        done = convert(args.model, drop_keras=args.drop_keras)
    except MemebotError as e:
        print(f"convert_artifact: error: {e}", file=sys.stderr)
        return e.exit_code
    except ImportError as e:
        print(f"convert_artifact: error: needs pip install 'memebot[train]' ({e})", file=sys.stderr)
        return 2
    print(f"{args.model}: " + ("converted" if done else "nothing to do"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
