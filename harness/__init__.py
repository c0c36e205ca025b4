"""Real parts wired together for the tests and the benchmarks (never shipped, never imported by
the product): one way to start an engine (in this process or as `memebot engine`), the
Discord API stand-in, scratch databases, small datasets and tiny trained models.

    engine.py          running_engine (in-process, loopback) / engine_process (`memebot engine`)
    bot.py             the real bot connected to the stand-in, its settings and store
    discord_standin/   the Discord REST API and gateway on loopback
    databases.py       throwaway PostgreSQL, SQLite and Redis queues
    factories.py       an ImgFlip575K-layout dataset, tiny trained models, settings for a tmp dir
    skips.py, disks.py, cli.py   skip-or-fail (MEMEBOT_REQUIRE_ALL), a full disk, CLI asserts
    transformer.py     a small random-weight transformer for the NumPy decoding tests
    layers.py          the layer rule over every import (tests/test_harness_layers.py)

Tests import from here, never from another test module or from conftest.py; benchmarks
likewise (nothing under bench/ imports tests/).
"""
