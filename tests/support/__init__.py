"""Helpers the test folders share: one way to build staff, to wait, to serve the ASGI app, and
to build an upstream client's breaker and retries, so that no folder keeps its own copy."""
