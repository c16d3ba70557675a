"""The local mirror of each trade platform: what back-office lists read instead of the server.

Rows are written only by snapshot runs (:mod:`platforms.mirror.runs`, through
:mod:`platforms.mirror.writers`) and are keyed by ``(platform, login)`` /
``(platform, ticket)``. Every row carries ``last_seen_at``: the stamp of the run that last
wrote it (a full run writes every row it reads, which is how it finds rows that disappeared on
the server; other runs skip rows that did not change).

Money is stored as ``float`` (the wire's ``double``): the mirror is a read model of the
server's own doubles, never a ledger, and float keeps the 2,000,000-row loads cheap.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from platforms.models.platform import TradePlatform


class MarginState(models.TextChoices):
    OK = "Ok", "OK"
    MARGIN_CALL = "MarginCall", "Margin call"
    STOP_OUT = "StopOut", "Stop out"


class MirrorAccount(models.Model):
    """An MT4 user (``MT4User`` + ``MT4MarginLevel``) or an MT5 user (``MT5User``).

    MT5 has no margin endpoint: its ``equity`` is balance + credit + the floating result of
    its mirrored positions, and ``margin``/``free_margin``/``margin_level`` stay empty.
    """

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    login = models.BigIntegerField()
    group = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=128, blank=True)
    first_name = models.CharField(max_length=64, blank=True)
    last_name = models.CharField(max_length=64, blank=True)
    email = models.CharField(max_length=128, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=64, blank=True)
    city = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=64, blank=True)
    zip_code = models.CharField(max_length=32, blank=True)
    address = models.CharField(max_length=256, blank=True)
    company = models.CharField(max_length=128, blank=True)
    external_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, blank=True)
    lead_source = models.CharField(max_length=64, blank=True)
    comment = models.CharField(max_length=256, blank=True)
    currency = models.CharField(max_length=16, blank=True)
    leverage = models.IntegerField(default=0)
    agent_account = models.BigIntegerField(default=0)
    #: MT4 ``enableFlags`` bit 0x01 / MT5 ``rights`` Enabled.
    enabled = models.BooleanField(default=True)
    #: MT4 ``enableFlags`` bit 0x04 / MT5 ``rights`` TradeDisabled.
    read_only = models.BooleanField(default=False)
    enable_flags = models.IntegerField(default=0)
    rights = models.CharField(max_length=256, blank=True)
    last_ip = models.CharField(max_length=45, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_access_at = models.DateTimeField(null=True, blank=True)
    balance = models.FloatField(default=0.0)
    credit = models.FloatField(default=0.0)
    prev_balance = models.FloatField(default=0.0)
    prev_month_balance = models.FloatField(default=0.0)
    prev_equity = models.FloatField(default=0.0)
    prev_month_equity = models.FloatField(default=0.0)
    interest_rate = models.FloatField(default=0.0)
    taxes = models.FloatField(default=0.0)
    equity = models.FloatField(null=True, blank=True)
    margin = models.FloatField(null=True, blank=True)
    free_margin = models.FloatField(null=True, blank=True)
    #: equity / margin x 100; empty when no margin is used.
    margin_level = models.FloatField(null=True, blank=True)
    margin_state = models.CharField(max_length=16, choices=MarginState.choices, blank=True)
    margin_controlling_type = models.CharField(max_length=16, blank=True)
    #: ``MT4MarginLevel.updated`` (server time of the margin figures).
    margin_updated_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["platform", "login"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "login"], name="mirror_account_key")
        ]
        indexes = [
            models.Index(fields=["platform", "name", "login"], name="mirror_acc_name"),
            models.Index(fields=["platform", "email"], name="mirror_acc_email"),
            models.Index(fields=["platform", "group", "login"], name="mirror_acc_group"),
            models.Index(fields=["platform", "country", "login"], name="mirror_acc_country"),
            models.Index(fields=["platform", "equity", "login"], name="mirror_acc_equity"),
            models.Index(fields=["platform", "margin_level", "login"], name="mirror_acc_level"),
            models.Index(fields=["platform", "balance", "login"], name="mirror_acc_balance"),
            # sorting by registration (a column of the list) sorted every account otherwise
            models.Index(fields=["platform", "registered_at", "login"],
                         name="mirror_acc_registered"),
            models.Index(fields=["platform", "last_seen_at"], name="mirror_acc_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.login} {self.name}"


class TradeFields(models.Model):
    """What open and closed trades share (MT4 ``MT4Trade``, MT5 position/order/deal)."""

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    #: MT4 order ticket; MT5 position id / order ticket (open) or deal id (closed).
    ticket = models.BigIntegerField()
    login = models.BigIntegerField()
    #: The account's group when the row was read (lists filter and scope by group).
    group = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=32, blank=True)
    #: Buy, Sell, BuyLimit, SellLimit, BuyStop, SellStop, Balance, Credit (MT5: deal action).
    command = models.CharField(max_length=24)
    digits = models.IntegerField(default=0)
    #: Raw volume: MT4 lots x 100, MT5 manager units.
    volume = models.BigIntegerField(default=0)
    volume_lots = models.FloatField(default=0.0)
    open_price = models.FloatField(default=0.0)
    sl = models.FloatField(default=0.0)
    tp = models.FloatField(default=0.0)
    open_time = models.DateTimeField(null=True, blank=True)
    commission = models.FloatField(default=0.0)
    commission_agent = models.FloatField(default=0.0)
    swap = models.FloatField(default=0.0)
    profit = models.FloatField(default=0.0)
    taxes = models.FloatField(default=0.0)
    magic = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=128, blank=True)
    #: MT4 ``tradeRecordState`` / MT5 order state.
    state = models.CharField(max_length=24, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    activation = models.CharField(max_length=24, blank=True)
    margin_rate = models.FloatField(default=0.0)
    #: MT5 position id (deals, orders); 0 on MT4.
    position_id = models.BigIntegerField(default=0)
    #: Server modification time (MT4 ``timeStamp``, MT5 ``timeUpdate``).
    modified_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        abstract = True


class MirrorOpenTrade(TradeFields):
    """An open market trade or a pending order (MT4 trades; MT5 positions and orders)."""

    is_pending = models.BooleanField(default=False)
    current_price = models.FloatField(default=0.0)
    expiration = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["platform", "ticket"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "ticket"], name="mirror_open_key")
        ]
        indexes = [
            # Sort indexes end with the row key: pages sort by (column, key) for a stable order,
            # and an index without the key cannot serve that ORDER BY.
            models.Index(fields=["platform", "login"], name="mirror_open_login"),
            models.Index(fields=["platform", "group"], name="mirror_open_group"),
            models.Index(fields=["platform", "symbol", "ticket"], name="mirror_open_symbol"),
            models.Index(fields=["platform", "open_time", "ticket"], name="mirror_open_time"),
            models.Index(fields=["platform", "profit", "ticket"], name="mirror_open_profit"),
            # the trades list filtered by a symbol and sorted by profit or open time: without
            # these, a rare symbol sorted by profit walks the profit index past millions of
            # other symbols' trades (1.2 s at 3,000,000 trades; bench/broker_scale.py)
            models.Index(fields=["platform", "symbol", "profit", "ticket"],
                         name="mirror_open_symbol_profit"),
            models.Index(fields=["platform", "symbol", "open_time", "ticket"],
                         name="mirror_open_symbol_time"),
            models.Index(fields=["platform", "last_seen_at"], name="mirror_open_seen"),
        ]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.command} {self.symbol}"


class MirrorClosedTrade(TradeFields):
    """A closed trade, a deleted pending order, or a balance/credit operation (MT4 history);
    an MT5 deal. Closed rows never change on the server, so runs only add or refresh them."""

    close_price = models.FloatField(default=0.0)
    close_time = models.DateTimeField(null=True, blank=True)
    #: MT5 deal entry (In, Out, InOut, OutBy); blank on MT4.
    entry = models.CharField(max_length=8, blank=True)
    #: MT5 deal's order ticket; 0 on MT4.
    order = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["platform", "ticket"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "ticket"], name="mirror_closed_key")
        ]
        indexes = [
            models.Index(fields=["platform", "login", "close_time"], name="mirror_closed_login"),
            models.Index(fields=["platform", "group", "close_time"], name="mirror_closed_group"),
            models.Index(fields=["platform", "symbol"], name="mirror_closed_symbol"),
            models.Index(fields=["platform", "close_time", "ticket"], name="mirror_closed_time"),
            models.Index(fields=["platform", "open_time"], name="mirror_closed_open"),
        ]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.command} {self.symbol}"


class MirrorGroup(models.Model):
    """A trading group (``MT4Group`` / ``MT5ConGroup``)."""

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    company = models.CharField(max_length=128, blank=True)
    currency = models.CharField(max_length=16, blank=True)
    currency_digits = models.IntegerField(default=2)
    enabled = models.BooleanField(default=True)
    default_leverage = models.IntegerField(default=0)
    default_deposit = models.FloatField(default=0.0)
    margin_call = models.FloatField(default=0.0)
    stop_out = models.FloatField(default=0.0)
    #: MT4 ``marginControllingType`` / MT5 ``marginSOMode``: Percent or Currency (money).
    stop_out_mode = models.CharField(max_length=16, blank=True)
    #: MT4 ``marginMode`` (DontUse, UseAll…) / MT5 ``marginMode`` (RetailHedged…).
    margin_mode = models.CharField(max_length=32, blank=True)
    interest_rate = models.FloatField(default=0.0)
    credit = models.FloatField(default=0.0)
    max_positions = models.IntegerField(default=0)
    hedge_prohibited = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["platform", "name"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "name"], name="mirror_group_key")
        ]

    def __str__(self) -> str:
        return self.name


class MirrorSymbol(models.Model):
    """A symbol's specification (``MT4SymbolConfig`` / ``MT5Symbol``)."""

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    symbol = models.CharField(max_length=32)
    description = models.CharField(max_length=128, blank=True)
    currency_base = models.CharField(max_length=16, blank=True)
    currency_profit = models.CharField(max_length=16, blank=True)
    currency_margin = models.CharField(max_length=16, blank=True)
    digits = models.IntegerField(default=0)
    point = models.FloatField(default=0.0)
    contract_size = models.FloatField(default=0.0)
    tick_value = models.FloatField(default=0.0)
    tick_size = models.FloatField(default=0.0)
    spread = models.IntegerField(default=0)
    stops_level = models.IntegerField(default=0)
    freeze_level = models.IntegerField(default=0)
    trade_mode = models.CharField(max_length=24, blank=True)
    execution_mode = models.CharField(max_length=24, blank=True)
    profit_mode = models.CharField(max_length=24, blank=True)
    margin_mode = models.CharField(max_length=24, blank=True)
    margin_initial = models.FloatField(default=0.0)
    margin_maintenance = models.FloatField(default=0.0)
    margin_hedged = models.FloatField(default=0.0)
    margin_divider = models.FloatField(default=0.0)
    percentage = models.FloatField(default=0.0)
    swap_type = models.CharField(max_length=24, blank=True)
    swap_long = models.FloatField(default=0.0)
    swap_short = models.FloatField(default=0.0)
    volume_min = models.FloatField(default=0.0)
    volume_max = models.FloatField(default=0.0)
    volume_step = models.FloatField(default=0.0)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["platform", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "symbol"], name="mirror_symbol_key")
        ]

    def __str__(self) -> str:
        return self.symbol


class SnapshotKind(models.TextChoices):
    FULL = "full", "Full"
    INCREMENTAL = "incremental", "Incremental"
    HISTORY = "history", "Closed-trade history"


class SnapshotTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    STAFF = "staff", "Staff member"


class SnapshotState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    #: Another run held the platform; nothing was read or written.
    SKIPPED = "skipped", "Skipped (another run in progress)"


class SnapshotRun(models.Model):
    """One snapshot run of one platform: who asked, what it read and wrote, how it ended.

    ``stamp`` is the ``last_seen_at`` written on every row the run read; ``server_timestamp_to``
    is the server time (Unix seconds, server-local) the next incremental run starts from.
    ``checkpoint`` lets a history run resume after a worker crash.
    """

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=SnapshotKind.choices)
    trigger = models.CharField(max_length=16, choices=SnapshotTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(
        max_length=16, choices=SnapshotState.choices, default=SnapshotState.QUEUED
    )
    phase = models.CharField(max_length=64, blank=True)
    rows_read = models.BigIntegerField(default=0)
    rows_inserted = models.BigIntegerField(default=0)
    rows_updated = models.BigIntegerField(default=0)
    rows_deleted = models.BigIntegerField(default=0)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    stamp = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    activity_id = models.CharField(max_length=64, blank=True)
    server_timestamp_from = models.BigIntegerField(null=True, blank=True)
    server_timestamp_to = models.BigIntegerField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    attempts = models.IntegerField(default=0)
    checkpoint = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["platform", "state"], name="snapshot_run_state"),
            models.Index(fields=["platform", "-queued_at"], name="snapshot_run_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} snapshot #{self.pk} of {self.platform_id}"

    @property
    def is_active(self) -> bool:
        return self.state in (SnapshotState.QUEUED, SnapshotState.RUNNING)

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 0
        return min(100, int(self.progress_done * 100 / self.progress_total))


class MirrorState(models.Model):
    """Per-platform bookkeeping of the mirror, and the row that makes runs exclusive.

    ``running`` + ``heartbeat_at`` are the visible claim (a conditional UPDATE, taken over
    when the heartbeat is stale, i.e. the worker died); the data writes additionally run under
    a lock on this row (``SELECT … FOR UPDATE`` on PostgreSQL, the database write lock of an
    IMMEDIATE transaction on SQLite), so two runs can never interleave their writes.
    """

    platform = models.OneToOneField(
        TradePlatform, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    running = models.ForeignKey(
        SnapshotRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    #: ``host:pid`` of the worker holding the claim (a dead pid on the same host frees it).
    owner = models.CharField(max_length=128, blank=True)
    #: Server time (Unix seconds, server-local) reached by the last successful run.
    sync_timestamp = models.BigIntegerField(null=True, blank=True)
    accounts_as_of = models.DateTimeField(null=True, blank=True)
    trades_as_of = models.DateTimeField(null=True, blank=True)
    history_as_of = models.DateTimeField(null=True, blank=True)
    #: Closed-trade history is complete up to this server time.
    history_to = models.DateTimeField(null=True, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    #: The run stamp the totals (:class:`MirrorAccountTotal`, :class:`MirrorTradeTotal`) were
    #: added up at; they are read only while it equals ``trades_as_of`` (else the rows are).
    totals_as_of = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"mirror of {self.platform_id}"


class MirrorAccountTotal(models.Model):
    """The accounts of one platform added up per (group, currency, margin state).

    Written by every full and incremental run in its own transaction (:mod:`.totals`), so the
    overview, the alerts and an unfiltered accounts list read a few hundred rows instead of
    adding up a million accounts on every request. Group masks apply to ``group`` exactly as
    to the accounts themselves.
    """

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    group = models.CharField(max_length=64, blank=True)
    currency = models.CharField(max_length=16, blank=True)
    margin_state = models.CharField(max_length=16, blank=True)
    accounts = models.BigIntegerField(default=0)
    balance = models.FloatField(default=0.0)
    equity = models.FloatField(default=0.0)
    credit = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "group", "currency", "margin_state"],
                                    name="mirror_account_total_key"),
        ]

    def __str__(self) -> str:
        return f"{self.accounts} accounts of {self.group} ({self.currency}, {self.margin_state})"


class MirrorTradeTotal(models.Model):
    """The open trades of one platform added up per (group, symbol, pending or not): what the
    overview, the trades list's totals and exposure, and net exposure read (see
    :class:`MirrorAccountTotal`)."""

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    group = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=32, blank=True)
    is_pending = models.BooleanField(default=False)
    trades = models.BigIntegerField(default=0)
    lots = models.FloatField(default=0.0)
    buy_lots = models.FloatField(default=0.0)
    sell_lots = models.FloatField(default=0.0)
    profit = models.FloatField(default=0.0)
    swap = models.FloatField(default=0.0)
    commission = models.FloatField(default=0.0)
    #: the highest current price seen (net exposure needs one price per symbol)
    price = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "group", "symbol", "is_pending"],
                                    name="mirror_trade_total_key"),
        ]

    def __str__(self) -> str:
        return f"{self.trades} trades of {self.group} in {self.symbol}"
