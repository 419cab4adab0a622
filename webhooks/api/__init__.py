"""The events API for programs: token auth, cursor reads, replay, and the event stream.

Served under the webhooks prefix, so in the demo project it runs on the lean
handler with no middleware at all: every view authenticates its own bearer
token and answers errors in JSON, in the shape of the ingest answers.
"""
