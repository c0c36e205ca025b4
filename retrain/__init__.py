"""Retraining: ratings -> curated rows -> a fine-tune in a worker -> gate -> promotion.

  requests.py      asking for a run (/retrain, `memebot retrain`): a store row and a queued id
  queue.py         the job queue (huey: SQLite by default, PostgreSQL or Redis at scale)
  worker.py        one run: claim, curate, train, evaluate, gate, promote
  corpus.py        what curation asks of training, through `memebot data check-captions`
  curation.py      pure rules: rated generations -> training / held-out / negative rows
  gate.py          the promotion rule over evaluation numbers (pure)
  promotion.py     promotion and rollback: every engine replica reloads (engine.client), then
                   the store's active version and the models/active pointer follow
  subprocesses.py  `memebot` child processes (train, eval, data check-captions)
  cli.py           `memebot retrain`, `memebot worker`, `memebot model info|rollback`,
                   `memebot data export-ratings`

Nothing here imports training/ (training runs as `memebot` subprocesses) and of engine/ only
engine.client and engine.schema (harness/layers.py checks both). The bot uses requests.py,
queue.py and promotion.py and reads runs from the store (memebot.store). See docs/RETRAIN.md.
"""
