"""The simulated MT4 server and its v2 operations (main port and x86 sidecar)."""
