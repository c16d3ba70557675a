"""Dealer and finance operations as reconciled, exactly-once tasks (see ``docs/trading.md``).

One module per topic: ``submit``, ``approvals``, ``wire`` (the call each kind makes),
``execute``, ``outcomes``, ``drain``, ``reconcile``, ``sweep``, ``hedges``; every Celery
message goes through ``dispatch``, and ``tasks`` wraps the topics.

The rules that make an operation happen exactly once:

1. **One task per request id.** The form carries a UUID generated when it was rendered; the
   same id with the same parameters returns the existing task, with other parameters it is
   refused (``submit.IdempotencyConflict``). The id is the ``Idempotency-Key`` of every
   attempt.
2. **Claim before sending.** A worker moves the task ``queued → sent`` with a conditional
   UPDATE (committed) before the call, so two workers never both send it and a worker that
   dies mid-call leaves a ``sent`` task for the sweeper.
3. **Never resend blindly.** After a lost answer (``OutcomeUnknown``, a dropped connection, a
   non-WebAPI answer, a server fault) the task is ``outcome_unknown``. Reconciling *reads the
   platform first* — the balance record or order whose comment carries the task's tag
   ``#<12 hex digits of the request id>``, the order record, the user record — and confirms the
   task from what it finds. Only when the read shows it was not applied is the *identical*
   body resent under the *same* key: the server replays a stored result, answers
   ``in-progress`` while the first attempt still runs, or executes it once.
4. **Nothing sent, nothing lost.** ``Busy``, ``ConnectionNotMade``, an open circuit and
   ``NoConnect`` mean the platform never ran the write: the task goes back to ``queued``
   and Celery retries it with backoff; when retries run out it is ``failed``.
"""
