"""Query-string filters for the mirrored lists, shared by the pages and their CSV exports.

Every filter is optional and forgiving: a value that does not parse is reported on the form and
ignored, so a mistyped URL gives a normal page with a message, never an error page.
"""

from __future__ import annotations

from datetime import UTC, tzinfo

import django_filters as filters
from django import forms
from django.db.models import Q

from platforms.access.masks import masks_q
from platforms.mirror.models import MirrorAccount, MirrorClosedTrade, MirrorOpenTrade, MirrorSymbol
from platforms.timezones import ZonedDateRange

TRADE_COMMANDS = [(c, c) for c in ("Buy", "Sell", "BuyLimit", "SellLimit", "BuyStop", "SellStop")]


def _group_mask(queryset, name, value):
    return queryset.filter(masks_q(name, value)) if value else queryset


def _symbol(queryset, name, value):
    """Case-insensitive symbol match that can use the (platform, symbol, ticket) index.

    ``iexact`` compiles to ``UPPER(symbol) = UPPER(%s)`` on PostgreSQL, which no plain index
    serves (measured: a sequential scan of every trade). The spelling is resolved against the
    small symbols table instead, then matched exactly.
    """
    value = value.strip()
    if not value:
        return queryset
    names = {value, value.upper()}
    names.update(MirrorSymbol.objects.filter(symbol__iexact=value).values_list("symbol",
                                                                             flat=True))
    return queryset.filter(**{f"{name}__in": sorted(names)})


class AccountFilter(filters.FilterSet):
    """Search (login, name, email, IP) and filters for the accounts list.

    Searching personal data (email, IP) only happens for users allowed to see it: the view
    passes ``personal=False`` otherwise.
    """

    q = filters.CharFilter(method="search", label="Search")
    group = filters.CharFilter(field_name="group", method=_group_mask, label="Group mask",
                               help_text="Wildcards: real\\*, !demo*")
    country = filters.CharFilter(field_name="country", lookup_expr="iexact")
    enabled = filters.BooleanFilter(field_name="enabled", widget=forms.Select(choices=[
        ("", "Any"), ("true", "Enabled"), ("false", "Disabled")]))
    equity_min = filters.NumberFilter(field_name="equity", lookup_expr="gte", label="Equity ≥")
    equity_max = filters.NumberFilter(field_name="equity", lookup_expr="lte", label="Equity ≤")
    level_min = filters.NumberFilter(field_name="margin_level", lookup_expr="gte",
                                     label="Margin level ≥")
    level_max = filters.NumberFilter(field_name="margin_level", lookup_expr="lte",
                                     label="Margin level ≤")
    state = filters.ChoiceFilter(field_name="margin_state", label="Margin state", choices=[
        ("Ok", "OK"), ("MarginCall", "Margin call"), ("StopOut", "Stop out")])

    class Meta:
        model = MirrorAccount
        fields: list[str] = []

    def __init__(self, *args, personal: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.personal = personal

    def search(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        match = Q(name__icontains=value)
        if value.isdigit():
            match |= Q(login=int(value))
        if self.personal:
            match |= Q(email__icontains=value) | Q(last_ip=value)
        return queryset.filter(match)


class OpenTradeFilter(filters.FilterSet):
    login = filters.NumberFilter(field_name="login")
    group = filters.CharFilter(field_name="group", method=_group_mask, label="Group mask")
    symbol = filters.CharFilter(field_name="symbol", method=_symbol)
    command = filters.MultipleChoiceFilter(field_name="command", choices=TRADE_COMMANDS,
                                           label="Type")
    pending = filters.BooleanFilter(field_name="is_pending", widget=forms.Select(choices=[
        ("", "Open and pending"), ("false", "Open only"), ("true", "Pending only")]))
    volume_min = filters.NumberFilter(field_name="volume_lots", lookup_expr="gte", label="Lots ≥")
    volume_max = filters.NumberFilter(field_name="volume_lots", lookup_expr="lte", label="Lots ≤")
    profit_min = filters.NumberFilter(field_name="profit", lookup_expr="gte", label="Profit ≥")
    profit_max = filters.NumberFilter(field_name="profit", lookup_expr="lte", label="Profit ≤")

    class Meta:
        model = MirrorOpenTrade
        fields: list[str] = []


class ClosedTradeFilter(ZonedDateRange, filters.FilterSet):
    """``start``/``end`` are days on ``tz``, the reader's clock (their labels name it)."""

    start = filters.DateFilter(field_name="close_time", method="from_day", label="Closed from")
    end = filters.DateFilter(field_name="close_time", method="to_day", label="Closed to")
    login = filters.NumberFilter(field_name="login")
    group = filters.CharFilter(field_name="group", method=_group_mask, label="Group mask")
    symbol = filters.CharFilter(field_name="symbol", method=_symbol)
    command = filters.MultipleChoiceFilter(
        field_name="command", choices=[*TRADE_COMMANDS, ("Balance", "Balance"),
                                       ("Credit", "Credit")], label="Type")

    class Meta:
        model = MirrorClosedTrade
        fields: list[str] = []

    def __init__(self, *args, tz: tzinfo = UTC, zone_label: str = "UTC", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.zoned_labels(("start", "end"), zone_label)
