"""The Django receiver users write by hand: startproject's settings and middleware, a
csrf-exempt sync view that parses the JSON, checks Stripe's HMAC and calls
``objects.create``. Its table is made with ``migrate --run-syncdb``."""
