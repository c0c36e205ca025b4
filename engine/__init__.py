"""The meme engine: the HTTP server (app, schema, service, scheduler, render, catalog), the one
HTTP client of its API (client.py) and all decoding (decoding/). See docs/ENGINE.md."""
