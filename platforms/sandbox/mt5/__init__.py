"""The simulated MT5 server and its v2 operations."""
