"""The tutorials' Flask receiver: parse the JSON, answer 200 (no signature check,
nothing stored).

    gunicorn bench.peers.flask_app:app
"""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.post("/webhooks/<slug>/")
def webhook(slug: str) -> tuple[dict[str, bool], int]:
    event = request.get_json()
    app.logger.debug("received %s", event["type"])  # where a tutorial's handler goes
    return {"received": True}, 200
