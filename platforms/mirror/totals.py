"""Aggregates kept by the snapshot runs: accounts and open trades added up per group.

Cross-platform pages (overview, net exposure) and the totals of a list on a platform of a
million accounts must not add up every row on every request: a full or incremental run adds
them up once, in its own write transaction (:func:`refresh_totals`), per (group, currency,
margin state) and per (group, symbol, pending). A few hundred rows per platform then answer
"how many, how much" for any user, because group masks filter the ``group`` column of the
totals exactly as they filter the rows. ``MirrorState.totals_as_of`` says which run wrote
them: readers use them only while it equals ``trades_as_of`` (:func:`totals_fresh`), so a
mirror filled before this existed, or one whose run failed halfway, is read from its rows.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, Count, F, FloatField, Max, Sum, Value, When

from platforms.mirror.models import (
    MirrorAccount,
    MirrorAccountTotal,
    MirrorOpenTrade,
    MirrorState,
    MirrorTradeTotal,
)
from platforms.models import TradePlatform


def _lots(command: str):
    return Sum(Case(When(command=command, then=F("volume_lots")), default=Value(0.0),
                    output_field=FloatField()))


def refresh_totals(platform: TradePlatform, stamp: datetime) -> None:
    """Add the platform's accounts and open trades up again (call inside the run's write
    transaction, after its writes: the totals commit with the data they describe)."""
    pk = platform.pk
    accounts = (MirrorAccount.objects.filter(platform_id=pk).order_by()
                .values("group", "currency", "margin_state")
                .annotate(n=Count("pk"), b=Sum("balance"), e=Sum("equity"), c=Sum("credit")))
    trades = (MirrorOpenTrade.objects.filter(platform_id=pk).order_by()
              .values("group", "symbol", "is_pending")
              .annotate(n=Count("pk"), lots_=Sum("volume_lots"), buy=_lots("Buy"),
                        sell=_lots("Sell"), p=Sum("profit"), s=Sum("swap"),
                        c=Sum("commission"), price_=Max("current_price")))
    MirrorAccountTotal.objects.filter(platform_id=pk).delete()
    MirrorTradeTotal.objects.filter(platform_id=pk).delete()
    MirrorAccountTotal.objects.bulk_create(
        MirrorAccountTotal(platform_id=pk, group=a["group"] or "", currency=a["currency"] or "",
                           margin_state=a["margin_state"] or "", accounts=a["n"],
                           balance=a["b"] or 0.0, equity=a["e"] or 0.0, credit=a["c"] or 0.0)
        for a in accounts)
    MirrorTradeTotal.objects.bulk_create(
        MirrorTradeTotal(platform_id=pk, group=t["group"] or "", symbol=t["symbol"] or "",
                         is_pending=t["is_pending"], trades=t["n"], lots=t["lots_"] or 0.0,
                         buy_lots=t["buy"] or 0.0, sell_lots=t["sell"] or 0.0,
                         profit=t["p"] or 0.0, swap=t["s"] or 0.0, commission=t["c"] or 0.0,
                         price=t["price_"])
        for t in trades)
    MirrorState.objects.filter(platform_id=pk).update(totals_as_of=stamp)


def totals_fresh(state: MirrorState | None) -> bool:
    """Do the totals describe the mirror as it is (written by the run that wrote the data)?"""
    return bool(state and state.totals_as_of and state.totals_as_of == state.trades_as_of
                and state.totals_as_of == state.accounts_as_of)
