"""Coverage: the broker's hedge accounts at liquidity providers, reached over MT4 terminal
bridges (``client/``), registered in Django admin (``models``, ``forms``, ``admin``,
``services``). See ``docs/coverage.md``."""
