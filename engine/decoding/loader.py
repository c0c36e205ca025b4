"""Loading an artifact for decoding: read and check it whole, build the stepper, decode once."""

from __future__ import annotations

from pathlib import Path

from engine.decoding.archs import build_stepper
from engine.decoding.batch import sample_captions
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from memebot.artifact.load import read_artifact
from memebot.choices import DECODERS
from memebot.crowd import crowd_for
from memebot.errors import ArtifactError


def load_model(
    path: Path, *, decoder: str = "auto", threads: int = 0, crowd_weight: float = 0.3
) -> LoadedModel:
    """Read and check the whole artifact (schema, checksums, vocabulary, weight shapes), build
    its stepper and decode one short caption with it; any failure is an ArtifactError, raised
    before the caller swaps anything in (a decoder this machine or architecture cannot run:
    a UsageError). `decoder` (MEMEBOT_DECODER): see archs.build_stepper, char_gru_stepper.
    `crowd_weight` (MEMEBOT_CROWD_WEIGHT): the weight of the crowd's taste (`MODEL/crowd.npz`,
    memebot/crowd.py) beside well-formedness in best-of-N; 0 leaves it out. A crowd file that
    is corrupt or fitted for another model refuses the whole load (a ScorerError), so a reload
    keeps the model serving with its own scorer."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    art = read_artifact(path, weights=False)  # the architecture's stepper reads its weights
    stepper = build_stepper(art, decoder, threads)
    model = LoadedModel(
        art.meta.arch, art.config, art.vocab, art.templates, stepper, art.meta, path
    )
    if crowd_weight > 0:
        crowd = crowd_for(path, model.version)
        if crowd is not None:
            model.scorer = model.scorer.with_term(crowd, crowd_weight)
    test_decode(model)
    return model


def test_decode(model: LoadedModel) -> None:
    """Decode one short greedy caption on the generic template: a model that cannot step
    fails here, not on a user's request."""
    where = model.path or model.arch
    try:
        (caption,) = sample_captions(
            model, ["?"], n_boxes=[1], max_len=8, decoding=Decoding("greedy"), seed=0
        )
    except (ValueError, IndexError, TypeError, FloatingPointError) as e:
        raise ArtifactError(f"{where}: the model fails a test decode ({e})") from e
    if len(caption.boxes) != 1 or not caption.boxes[0]:
        raise ArtifactError(f"{where}: the model fails a test decode (no caption)")
