"""Reference receivers the benchmarks measure ours against, written here: the ceiling
(a raw ASGI callable), the receiver built by hand for speed without Django (raw ASGI,
HMAC, async psycopg, group commit), the Django receiver users write by hand, and the
tutorials' Flask receiver."""
