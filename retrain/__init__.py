"""Retraining: ratings -> curated rows -> a fine-tune in a worker -> gate -> promotion.

  curation.py   pure rules: rated generations -> training / held-out / negative rows
  corpus.py     the training data's cleaning and base corpus, for curation (imports training/)
  gate.py       the promotion rule over evaluation numbers (pure)
  queue.py      the job queue (huey: SQLite by default, PostgreSQL or Redis at scale)
  worker.py     one run: curate, train and evaluate through the `memebot` CLI, gate, promote
  engines.py    hot reload of every engine replica
  cli.py        `memebot retrain`, `memebot worker`, `memebot data export-ratings`

The bot only enqueues runs and reads them from the store (memebot.store runs); it never imports
this package's training side. See docs/RETRAIN.md.
"""
