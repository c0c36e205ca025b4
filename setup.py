"""Builds the optional C kernels: char-gru decoding (engine/decoding/_gru_step.c) and the
per-server taste's tilt (engine/decoding/_tilt_step.c).

Everything else is in pyproject.toml. `optional=True`: without a C compiler the install still
succeeds and decoding falls back to NumPy (engine/decoding/char_gru.py, tilt.py). The kernels are
compiled for the machine that installs it (-march=native), as `pip install -e .` does here;
set MEMEBOT_KERNEL_CFLAGS (e.g. "-O3 -mavx2 -mf16c -mfma") to build for other machines.
"""

from __future__ import annotations

import os
import shlex

from setuptools import Extension, setup

cflags = shlex.split(os.environ.get("MEMEBOT_KERNEL_CFLAGS", "-O3 -march=native"))
setup(
    ext_modules=[
        Extension(
            "engine.decoding._gru_step",
            ["engine/decoding/_gru_step.c"],
            extra_compile_args=[*cflags, "-ffast-math", "-fopenmp", "-std=gnu11"],
            extra_link_args=["-fopenmp", "-lm"],
            optional=True,
        ),
        Extension(
            "engine.decoding._tilt_step",
            ["engine/decoding/_tilt_step.c"],
            extra_compile_args=[*cflags, "-std=gnu11"],
            optional=True,
        ),
    ]
)
