"""The clients' side is the mirror plus the trades the live stream reported since the mirror's
version: opened, closed, partly closed and activated orders replace the mirror's rows, within
the user's group masks; what the mirror already covers is left alone."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.utils import timezone

from platforms.coverage.selectors import client_positions
from platforms.coverage.stream_trades import StreamTrades, cache_key
from platforms.mirror.models import MirrorState
from tests.factories import MirrorOpenTradeFactory, StaffUserFactory, TradePlatformFactory, grant

pytestmark = pytest.mark.django_db


def _trade(order: int, login: int, cmd: int, lots: float, kind: str = "Added",
           symbol: str = "EURUSD", profit: float = 0.0) -> dict:
    """A ``StreamTrades`` payload as the hub sends it (cmd 0 buy, 1 sell, 2+ pending)."""
    return {"kind": kind, "order": order, "login": login, "symbol": symbol, "cmd": cmd,
            "volumeLots": lots, "profit": profit, "storage": 0.0, "commission": 0.0}


@pytest.fixture
def platform():
    platform = TradePlatformFactory()
    cache.delete(cache_key(platform.pk))  # nothing left by another test's platform of this pk
    version = timezone.now() - timedelta(seconds=60)
    MirrorState.objects.create(platform=platform, trades_as_of=version)
    for ticket, group, command, lots, profit in (
            (1, "real\\a", "Buy", 2.0, 10.0), (2, "real\\a", "Sell", 0.5, -1.0),
            (3, "real\\b", "Buy", 1.0, 5.0), (4, "real\\a", "Buy", 3.0, 2.0)):
        MirrorOpenTradeFactory(platform=platform, ticket=ticket, group=group, command=command,
                               volume_lots=lots, volume=int(lots * 100), profit=profit)
    MirrorOpenTradeFactory(platform=platform, ticket=5, group="real\\a", command="BuyLimit",
                           volume_lots=1.5, is_pending=True)
    return platform


def _stream(platform, *trades: tuple[dict, str | None], at: float | None = None) -> None:
    overlay = StreamTrades(platform.pk)
    for payload, group in trades:
        overlay.note(payload, group, at)
    async_to_sync(overlay.save)()


def test_the_stream_replaces_the_mirror_for_the_orders_it_reported(platform):
    user = grant(StaffUserFactory(username="st-risk"), platform, role="risk")
    assert client_positions(user, [platform])["EURUSD"]["buy"] == pytest.approx(6.0)
    _stream(platform,
            (_trade(1, 10, 0, 2.0, "Deleted"), "real\\a"),  # closed
            (_trade(4, 10, 0, 1.0, "Deleted"), "real\\a"),  # partly closed: 2 lots remain
            (_trade(6, 10, 0, 2.0, profit=7.0), "real\\a"),  # the remainder, a new ticket
            (_trade(5, 10, 0, 1.5, "Updated"), "real\\a"),  # the pending order activated
            (_trade(7, 11, 1, 0.3, symbol="GBPUSD"), "real\\a"),  # a new sell
            (_trade(8, 12, 2, 4.0), "real\\a"))  # a new pending order counts nothing
    rows = client_positions(user, [platform])
    assert rows["EURUSD"]["buy"] == pytest.approx(1.0 + 2.0 + 1.5)  # 3, the remainder, 5
    assert rows["EURUSD"]["sell"] == pytest.approx(0.5)
    assert rows["EURUSD"]["profit"] == pytest.approx(-1.0 + 5.0 + 7.0)
    assert rows["GBPUSD"]["sell"] == pytest.approx(0.3)


def test_orders_reported_before_the_mirror_caught_up_are_left_to_it(platform):
    user = grant(StaffUserFactory(username="st-old"), platform, role="risk")
    _stream(platform, (_trade(1, 10, 0, 2.0, "Deleted"), "real\\a"),
            at=time.time() - 3600)  # the mirror (a minute old) already holds what followed
    assert client_positions(user, [platform])["EURUSD"]["buy"] == pytest.approx(6.0)


def test_the_stream_is_scoped_by_group_masks_like_the_mirror(platform):
    masked = grant(StaffUserFactory(username="st-masked"), platform, role="risk",
                   group_masks="real\\*,!real\\b")
    before = client_positions(masked, [platform])["EURUSD"]["buy"]
    assert before == pytest.approx(5.0)  # ticket 3 (real\b) is not theirs
    _stream(platform,
            (_trade(3, 20, 0, 1.0, "Deleted"), "real\\b"),  # outside: changes nothing here
            (_trade(9, 21, 0, 9.0), "real\\b"),
            (_trade(10, 22, 0, 7.0), None),  # unknown group: only users without masks
            (_trade(11, 23, 0, 0.25), "real\\a"))  # inside
    assert client_positions(masked, [platform])["EURUSD"]["buy"] == pytest.approx(5.25)
    unmasked = grant(StaffUserFactory(username="st-all"), platform, role="risk")
    assert client_positions(unmasked, [platform])["EURUSD"]["buy"] == pytest.approx(
        6.0 - 1.0 + 9.0 + 7.0 + 0.25)
