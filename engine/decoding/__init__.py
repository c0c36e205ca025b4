"""Decoding: everything between a loaded artifact and finished captions.

    pickers.py    next-character rules and pickers, vectorised over rows (Decoding; the method
                  names and defaults are memebot/decoding.py's)
    jobs.py       requests in flight: RowJob (rows in the RowTable), BeamJob (steps itself);
                  best-of-N among a RowJob's candidates, a seeded draw among a BeamJob's beams
    scoring.py    Scorer: what those choices go by (well-formedness + pluggable ScoreTerms)
    rowtable.py   the rows of every RowJob of a batch, as arrays
    unseen.py     templates without captions: which rows open a box with the template's name
    tilt.py       a server's taste acting on sampling: per-character n-gram tilt, length factor
    repeats.py    the repetition guard: no mark more than MAX_MARK_RUN times in a row
    batch.py      Batch (one model call per character for all jobs), run_jobs, sample_captions
    model.py      LoadedModel: vocabulary + template table + a stepper
    char_gru.py, gru_kernel.py (+ _gru_step.c), lstm.py, transformer.py (KV cache),
    seed_cnn.py   the steppers
    recurrent.py  what the NumPy char-gru and lstm steps share
    tf_step.py    the tf decoder: TFStepper compiles an architecture's TFCell (imports TensorFlow)
    char_gru_tf.py, lstm_tf.py, transformer_tf.py  their TFCells
    tf_device.py  is TensorFlow here, does it see a GPU
    archs.py      the served architectures: where each one's weights come from, its stepper,
                  its tf cell; build_stepper resolves MEMEBOT_DECODER
    loader.py     load_model: read + check an artifact, build its stepper, decode once

Imports flow one way (pickers, unseen, tilt, repeats <- jobs <- rowtable <- batch <- loader;
scoring <- model <- archs <- loader; model <- batch); nothing here imports `training` or the rest
of `engine` (harness/layers.py).
"""
