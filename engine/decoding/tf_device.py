"""Is TensorFlow here, and does it see a GPU? Answered without importing TensorFlow where the
answer is no: serving on a CPU machine must not pay TensorFlow's import (seconds, hundreds of
MB; tests/test_engine_no_tensorflow.py), even where it is installed (the dev and train installs).

`MEMEBOT_DECODER=auto` picks the tf decoder only when `gpu_seen()`: TensorFlow is installed,
the machine shows a GPU device node, and TensorFlow (imported only then) lists a GPU.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from functools import cache


def installed() -> bool:
    """TensorFlow is importable (found on the path, not imported)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        return False


def gpu_hint() -> bool:
    """A GPU TensorFlow could use is likely here: an NVIDIA device node (CUDA), /dev/dxg (CUDA
    under WSL2) or /dev/kfd (ROCm), and CUDA_VISIBLE_DEVICES does not hide every device. Cheap
    (a few stat calls); it only decides whether to ask TensorFlow. macOS (tensorflow-metal)
    is never guessed: set MEMEBOT_DECODER=tf there."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*")) or any(
        os.path.exists(p) for p in ("/dev/dxg", "/dev/kfd")
    )


@cache
def gpu_seen() -> bool:
    """TensorFlow is installed and lists a GPU (TensorFlow is imported only if `gpu_hint`)."""
    if not (installed() and gpu_hint()):
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
