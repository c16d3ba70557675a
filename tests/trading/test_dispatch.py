"""The desk addresses its Celery tasks by name (``platforms.trading.dispatch``), so that no
module of the desk imports ``tasks``: the names must be the registered tasks' own, and a
message published by name alone must still reach the ``trading`` queue."""

from __future__ import annotations

import pytest
from celery import current_app

from platforms.trading import dispatch, tasks

NAMED = [
    (dispatch.EXECUTE, tasks.execute_trade_task),
    (dispatch.DRAIN, tasks.drain_trade_tasks),
    (dispatch.RECONCILE, tasks.reconcile_trade_task),
]


@pytest.mark.parametrize(("name", "task"), NAMED, ids=[name for name, _ in NAMED])
def test_dispatch_names_a_registered_trading_task(name, task):
    assert name == task.name
    assert name in current_app.tasks


@pytest.mark.parametrize("name", [name for name, _ in NAMED])
def test_a_message_published_by_name_goes_to_the_trading_queue(name):
    # a web process never loads ``tasks``: its messages are routed by name alone
    assert current_app.amqp.router.route({}, name)["queue"].name == "trading"
