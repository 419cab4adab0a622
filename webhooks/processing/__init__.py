"""Running handlers on stored events: claim, run, record, retry and replay, the worker loop, the
inline runner of the server process, and the wake-up that tells workers of new work."""
