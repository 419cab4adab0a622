"""Reference receivers the benchmarks measure ours against, written here: the ceiling
(a raw ASGI callable), the Django receiver users write by hand, and the tutorials'
Flask receiver."""
