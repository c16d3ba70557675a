"""Dealer and finance operations as reconciled, exactly-once tasks (see ``docs/trading.md``)."""
