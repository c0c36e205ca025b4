"""Import TensorFlow without its C++ start-up chatter on the user's terminal.

TF 2.21 logs oneDNN/CPU-feature notices through absl before TF_CPP_MIN_LOG_LEVEL applies, so
the only way to keep `memebot generate` output clean is to point fd 2 elsewhere during the
import. Python-level errors still surface: they are raised, not printed, during import.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
