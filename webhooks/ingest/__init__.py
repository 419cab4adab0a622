"""Taking a delivery in: the two front doors (the Django view and the lean ASGI door), the ordered
steps that answer or refuse it, and the writes that store it."""
