"""Prometheus metrics at ``/metrics`` (docs/deploy.md, "Metrics").

Where each family comes from, and why there:

- ``http``: request latency per resolved view, observed in the web process by a middleware
  (multiprocess-safe through ``PROMETHEUS_MULTIPROC_DIR`` when uvicorn runs several workers);
- ``tasks``: Celery task outcomes, counted by signal receivers in the workers into one Redis
  hash (the workers run on other machines than the web process that is scraped);
- ``collectors``: everything that is state rather than events (queue depths, trade tasks by
  state, breakers, the realtime bridges, mirror and coverage ages), read at scrape time from
  the broker, the database and the shared cache, so no process has to push it anywhere.
"""
