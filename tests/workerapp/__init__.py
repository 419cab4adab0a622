"""A test app for end-to-end processing: its handler records every call it gets."""
