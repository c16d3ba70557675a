"""Sources: what a snapshot run reads from the trade platform, and in which order.

* **MT4 full**: ``ServerTime``, ``GroupsRequest``, ``CfgRequestSymbol``, sidecar
  ``UsersSnapshot`` + ``MarginsGet``, sidecar ``TradesSnapshot``; everything replaces the
  mirror (rows not seen are deleted), in one transaction.
* **MT4 incremental**: ``UsersSyncStart``/``TradesSyncStart`` on the main API, then
  ``UsersSyncRead``/``TradesSyncRead`` on the sidecar: only what changed. ``MarginsGet`` (the
  one answer about every account: prices move margins without a record change) is read in
  the background meanwhile; records the server computed before the window are dropped
  unconverted (their ``updated`` stamp), the rest written where their figures moved.
* **MT4 history**: ``ReportsRequest`` in batches of logins, read ahead of the writes and
  committed ~20,000 trades at a time with a checkpoint (resumable).
* **MT5**: no snapshot or sync call exists, so every kind pages positions, orders and deals
  and reads each user, group and symbol they mention.

The one-shot snapshot answers are kept as raw JSON slices of their body and decoded item by
item while rows are written (:func:`raw_items`, :func:`decoded`), so 100,000s of decoded
records never sit next to the body. The MT4 x86-only reads go to the sidecar, everything else
to the main API: the client routes by operation.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import gc
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from django.conf import settings
from django.db import connection, transaction

from platforms.client import MT4, NotFound
from platforms.client import records as r
from platforms.mirror.models import (
    MirrorAccount,
    MirrorClosedTrade,
    MirrorGroup,
    MirrorOpenTrade,
    MirrorState,
    MirrorSymbol,
    SnapshotRun,
)
from platforms.mirror.rows import MirrorRows, is_open, margin_values, server_seconds
from platforms.mirror.writers import (
    ACCOUNT_FIELDS,
    ACCOUNT_USER_FIELDS,
    CLOSED_FIELDS,
    GROUP_FIELDS,
    LOOKUP_BATCH,
    OPEN_FIELDS,
    SYMBOL_FIELDS,
    MirrorWriter,
    chunks,
)

if TYPE_CHECKING:
    from platforms.mirror.runs import Progress

#: An incremental run re-reads this many seconds before the last server time reached, so a
#: change made in the same second as the previous run's start is never missed.
SYNC_OVERLAP_SECONDS = 2
#: Logins per ``ReportsRequest`` of a history run (repeated in the query string: a long
#: URL is what limits it).
HISTORY_LOGINS_PER_CALL = 200
#: A history run commits (with its checkpoint) once it has read this many closed trades.
HISTORY_ROWS_PER_COMMIT = 10_000
#: ``ReportsRequest`` answers read ahead of the writes (each ~20 trades per login).
HISTORY_READ_AHEAD = 4
#: Upper bound of the one-shot snapshot answers (the spec's maximum).
SNAPSHOT_LIMIT = 1_000_000
#: Records per page when a platform is read in cursor pages (``UsersRequest``, ``TradesGet``).
PAGE_SIZE = 5_000
MT5_MASK = "*"
MT5_FETCH_THREADS = 8


def raw_items(client, operation: str, **query: Any) -> list[msgspec.Raw]:
    """A one-shot list answer as raw JSON slices of the one response body.

    The items are decoded one by one later (:func:`decoded`), so the body is held once
    and never next to 100,000s of decoded records. Same send path as every typed call: retry
    policy, circuit breaker (the sidecar's own for x86 operations) and error mapping.
    """
    op = dataclasses.replace(MT4[operation], response=list[msgspec.Raw])
    return client._call(op, query=query)


def decoded(items: list[msgspec.Raw], record: type) -> Iterator[Any]:
    decoder = _item_decoder(record)
    for item in items:
        yield decoder.decode(item)


@functools.cache
def _item_decoder(record: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(record)


def return_freed_memory() -> None:
    """Give the memory of answers already written back to the system (glibc keeps it).

    The big answers are freed in pieces; left in the heap, the next one (or the next run's,
    in a worker that lives for many runs) would pile up on top of them.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PlatformReader:
    """Reads one platform for one run and hands the rows to its writer as they come.

    ``finish(**fields)`` records the run's success; it is called inside the last write
    transaction, so the data and the verdict commit together.
    """

    def __init__(self, run: SnapshotRun, client, progress: Progress, writer: MirrorWriter,
                 finish: Callable[..., None]) -> None:
        self.run = run
        self.platform = run.platform
        self.client = client
        self.progress = progress
        self.writer = writer
        self.finish = finish
        self.stamp = writer.stamp
        self.rows = MirrorRows(self.platform.pk, writer.stamp,
                               self.platform.time_zone_applied)
        self.state = MirrorState.objects.get(platform=self.platform)

    def _phase(self, phase: str, total: int | None = None) -> None:
        self.progress.set(phase, total=total)

    # ------------------------------------------------------------------ MT4 full
    def mt4_full(self) -> None:
        """Reads and writes interleave inside ONE transaction so that only one big answer is
        held at a time (a fault in any read still rolls everything back)."""
        mt4 = self.client.mt4
        self._phase("reading server time")
        reached = server_seconds(mt4.server_time())
        self._phase("reading groups and symbols")
        groups = list(mt4.iter_groups())
        symbols = mt4.cfg_request_symbol()
        currency = {g.group: g.currency or "" for g in groups}
        group_of: dict[int, str] = {}
        with transaction.atomic():
            self.writer.lock()
            one_shot = self._one_shot_limit()
            users = None
            if one_shot:
                self._phase("reading accounts (sidecar UsersSnapshot)")
                users = raw_items(self.client, "UsersSnapshot", limit=one_shot)
                if len(users) >= one_shot:  # larger than one answer may be: read it in pages
                    users = None
                    return_freed_memory()
            self._phase("reading margins (MarginsGet)")
            margins = {m.login: m for m in mt4.margins_get()}
            self._phase("writing accounts" if users is not None
                        else "reading and writing accounts (UsersRequest pages)",
                        total=len(groups) + len(symbols) + (len(users) if users is not None
                                                            else len(margins)))
            self.writer.replace(MirrorGroup, (self.rows.mt4_group(g) for g in groups),
                                ["name"], GROUP_FIELDS)
            self.writer.replace(MirrorSymbol, (self.rows.mt4_symbol(s) for s in symbols),
                                ["symbol"], SYMBOL_FIELDS)

            def account_rows(records, margin_of):
                for u in records:
                    group_of[u.login] = u.group or ""
                    yield self.rows.mt4_account(u, margin_of.pop(u.login, None), currency)

            self.writer.replace(
                MirrorAccount,
                account_rows(decoded(users, r.MT4User) if users is not None
                             else mt4.iter_users(page_size=PAGE_SIZE), margins),
                ["login"], ACCOUNT_FIELDS)
            del users, margins
            return_freed_memory()
            trades = None
            if one_shot:
                self._phase("reading open trades (sidecar TradesSnapshot)")
                trades = raw_items(self.client, "TradesSnapshot", limit=3 * one_shot)
                if len(trades) >= 3 * one_shot:
                    trades = None
                    return_freed_memory()
            if trades is not None:
                self._phase("writing open trades", total=self.progress.done + len(trades))
                records = decoded(trades, r.MT4Trade)
            else:
                self._phase("reading and writing open trades (TradesGet pages)",
                            total=self.progress.done + 3 * len(group_of))  # an estimate
                records = mt4.iter_trades_get(page_size=PAGE_SIZE)
            self.writer.replace(
                MirrorOpenTrade,
                (self.rows.mt4_open(t, group_of) for t in records if is_open(t)),
                ["ticket"], OPEN_FIELDS,
            )
            del trades, records
            self.writer.set_state(
                sync_timestamp=reached, accounts_as_of=self.stamp, trades_as_of=self.stamp,
                last_full_at=self.stamp,
            )
            self.progress.total = self.progress.done
            self.finish(server_timestamp_to=reached)

    def _one_shot_limit(self) -> int:
        """How many items a one-shot snapshot answer may hold (0: page at once). A platform
        of more than ``SNAPSHOT_ONE_SHOT_MAX`` accounts (or three times as many trades) is read in
        cursor pages of ``PAGE_SIZE``: the
        one-shot body (≈1.6 KB per account with its trades) would otherwise set the worker's
        memory, and past the spec's 1,000,000 items it would be cut short. A mirror already
        that large pages at once; a smaller one asks for one more than fits and pages when
        the answer comes back full."""
        limit = min(SNAPSHOT_LIMIT // 3, settings.SNAPSHOT_ONE_SHOT_MAX)
        known = MirrorAccount.objects.filter(platform=self.platform)[:limit].count()
        return 0 if known >= limit else limit

    # ------------------------------------------------------------------ MT4 incremental
    def mt4_incremental(self) -> None:
        """Only what changed since the last server time reached (less an overlap): the sync
        reads, then the margin figures that moved. Rows equal to the stored ones are skipped.

        ``MarginsGet`` (every account's figures, the one large answer) is read in the
        background while the changed records are written: the server computes it meanwhile.
        """
        mt4 = self.client.mt4
        since = max(0, (self.state.sync_timestamp or 0) - SYNC_OVERLAP_SECONDS)
        self._phase("reading server time")
        reached = server_seconds(mt4.server_time())
        self._phase("reading changed accounts (UsersSyncStart → sidecar UsersSyncRead)")
        mt4.users_sync_start(since)
        users = mt4.users_sync_read(limit=SNAPSHOT_LIMIT)
        self._phase("reading changed trades (TradesSyncStart → sidecar TradesSyncRead)")
        mt4.trades_sync_start(since)
        trades = mt4.trades_sync_read(limit=SNAPSHOT_LIMIT)
        currency = dict(
            MirrorGroup.objects.filter(platform=self.platform).values_list("name", "currency")
        )
        open_trades = [t for t in trades if is_open(t)]
        closed = [t for t in trades if not is_open(t)]
        self._phase("writing changed records", total=len(users) + len(trades))
        with ThreadPoolExecutor(max_workers=1) as background, transaction.atomic():
            margins_read = background.submit(self._margin_rows, mt4, since)
            self.writer.lock()
            # The margin columns are left to refresh_margins (a new account's start empty).
            self.writer.merge(
                MirrorAccount, [self.rows.mt4_account(u, None, currency) for u in users],
                ["login"], ACCOUNT_USER_FIELDS,
            )
            group_of = {u.login: u.group or "" for u in users}
            group_of.update(self._groups_of({t.login for t in trades} - group_of.keys()))
            self.writer.merge(MirrorOpenTrade,
                              [self.rows.mt4_open(t, group_of) for t in open_trades],
                              ["ticket"], OPEN_FIELDS)
            self.writer.delete_open([t.order for t in closed])
            self.writer.merge(MirrorClosedTrade,
                              [self.rows.mt4_closed(t, group_of) for t in closed],
                              ["ticket"], CLOSED_FIELDS)
            self._phase("reading margins (MarginsGet)")
            margins = margins_read.result()
            self._phase("writing margins that moved", total=self.progress.done + len(margins))
            self.writer.refresh_margins(margins, written={u.login for u in users})
            self.writer.set_state(
                sync_timestamp=reached, accounts_as_of=self.stamp, trades_as_of=self.stamp
            )
            self.finish(server_timestamp_from=since, server_timestamp_to=reached)

    def _margin_rows(self, mt4, since: int) -> list[tuple]:
        """The margin figures computed at/after ``since``, as ``(login, *MARGIN_COLUMNS)``.

        ``MarginsGet`` has no filter: every account's record comes. Its ``updated`` is when
        the server computed those figures; one computed before ``since`` is what the previous
        run read (that run read the margins after its own start, and ``since`` is that start
        less the overlap), so it is dropped here, unconverted and never compared with the
        stored row. A record without the stamp (0) is kept.
        """
        offset = self.rows.offset_minutes
        return [(m.login, *margin_values(m, offset)) for m in mt4.margins_get()
                if m.updated >= since or m.updated <= 0]

    def _groups_of(self, logins: Collection[int]) -> dict[int, str]:
        """The stored group of each of ``logins`` (trades carry their account's group)."""
        if not logins:
            return {}
        if connection.vendor == "postgresql":
            # One array parameter instead of thousands of IN placeholders.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT login, {connection.ops.quote_name('group')} "  # noqa: S608
                    f"FROM {MirrorAccount._meta.db_table} "
                    "WHERE platform_id = %s AND login = ANY(%s)",
                    [self.platform.pk, sorted(logins)],
                )
                return dict(cursor.fetchall())
        found: dict[int, str] = {}
        for chunk in chunks(sorted(logins), LOOKUP_BATCH):
            found.update(
                MirrorAccount.objects.filter(platform=self.platform, login__in=chunk)
                .values_list("login", "group")
            )
        return found

    # ------------------------------------------------------------------ MT4 history
    def mt4_history(self) -> None:
        """Closed trades (incl. balance/credit operations) through ``ReportsRequest``, in
        batches of logins, each committed with its checkpoint (resumable, idempotent)."""
        mt4 = self.client.mt4
        self._phase("reading server time")
        reached = datetime.fromtimestamp(server_seconds(mt4.server_time()), tz=UTC)
        checkpoint = dict(self.run.checkpoint or {})
        if "to" not in checkpoint:
            start = self.state.history_to - timedelta(days=1) if self.state.history_to else None
            checkpoint = {
                "from": (start or datetime(1970, 1, 2, tzinfo=UTC)).isoformat(),
                "to": reached.isoformat(),
                "after_login": 0,
            }
        t_from = datetime.fromisoformat(checkpoint["from"])
        t_to = datetime.fromisoformat(checkpoint["to"])
        logins = list(
            MirrorAccount.objects.filter(platform=self.platform).order_by("login")
            .values_list("login", flat=True)
        )
        done_before = sum(1 for x in logins if x <= checkpoint["after_login"])
        todo = [x for x in logins if x > checkpoint["after_login"]]
        group_of = dict(
            MirrorAccount.objects.filter(platform=self.platform).values_list("login", "group")
        )
        # A first load finds the trades absent (but for the few a sync has moved over, which
        # the writer detects): they are copied straight in rather than merged.
        first_load = self.state.history_to is None
        self._phase("reading closed trades (ReportsRequest)", total=len(logins))
        self.progress.set(done=done_before)
        requests = list(chunks(todo, HISTORY_LOGINS_PER_CALL))
        pending: list[r.MT4Trade] = []
        # Requests are read one after the other, up to HISTORY_READ_AHEAD ahead of the
        # writes (so the server is never idle while rows are written, and at most that many
        # answers wait in memory); rows are committed ~HISTORY_ROWS_PER_COMMIT at a time.
        with ThreadPoolExecutor(max_workers=1) as reader:
            ahead: deque[Future] = deque(
                reader.submit(mt4.reports_request, t_from, t_to, logins_read)
                for logins_read in requests[:HISTORY_READ_AHEAD]
            )
            for index, logins_read in enumerate(requests):
                pending += ahead.popleft().result()
                if index + HISTORY_READ_AHEAD < len(requests):
                    ahead.append(reader.submit(mt4.reports_request, t_from, t_to,
                                               requests[index + HISTORY_READ_AHEAD]))
                if len(pending) < HISTORY_ROWS_PER_COMMIT and index + 1 < len(requests):
                    continue
                self._write_history_batch(pending, logins_read[-1], group_of, checkpoint,
                                          first_load)
                pending = []
                # merge() advanced the bar by rows; the bar counts logins here.
                done_before = sum(1 for x in logins if x <= logins_read[-1])
                self.progress.set(done=done_before)
        with transaction.atomic():
            self.writer.set_state(history_as_of=self.stamp, history_to=t_to)
            self.finish()

    def _write_history_batch(self, trades: list[r.MT4Trade], after_login: int,
                             group_of: dict[int, str], checkpoint: dict[str, Any],
                             first_load: bool) -> None:
        """Closed trades of logins up to ``after_login``, committed with the checkpoint."""
        with transaction.atomic():
            self.writer.lock()
            self.writer.commit_without_flush_wait()
            self.writer.merge(MirrorClosedTrade,
                              (self.rows.mt4_closed(t, group_of) for t in trades),
                              ["ticket"], CLOSED_FIELDS, new=first_load)
            checkpoint["after_login"] = after_login
            SnapshotRun.objects.filter(pk=self.run.pk).update(checkpoint=checkpoint)

    # ------------------------------------------------------------------ MT5
    def mt5_full(self) -> None:
        """MT5 has no snapshot or sync calls: page positions, orders and deals by group mask,
        then read each user, group and symbol they mention. Every kind is a full run."""
        mt5 = self.client.mt5
        self._phase("reading server time")
        reached = server_seconds(mt5.server_time())
        self._phase("reading positions (PositionByGroup)")
        positions = list(mt5.iter_positions(MT5_MASK))
        self._phase("reading orders (OrderByGroup)")
        orders = list(mt5.iter_orders(MT5_MASK))
        self._phase("reading deals (DealByGroup)")
        deals = list(mt5.iter_deals(MT5_MASK))
        logins = {x.login for x in (*positions, *orders, *deals) if x.login}
        logins.update(
            MirrorAccount.objects.filter(platform=self.platform).values_list("login", flat=True)
        )
        self._phase("reading users (UserGet)", total=len(logins))
        users = [u for u in self._fetch_each(mt5.user_get, sorted(logins)) if u is not None]
        group_names = sorted({u.group for u in users if u.group})
        symbol_names = sorted({x.symbol for x in (*positions, *orders, *deals) if x.symbol})
        self._phase("reading groups and symbols (GroupGet, SymbolGet)")
        groups = [g for g in self._fetch_each(mt5.group_get, group_names) if g is not None]
        symbols = [s for s in self._fetch_each(mt5.symbol_get, symbol_names) if s is not None]
        group_of = {u.login: u.group or "" for u in users}
        currency = {g.group: g.currency or "" for g in groups}
        floating: dict[int, float] = {}
        for p in positions:
            floating[p.login] = floating.get(p.login, 0.0) + (p.profit or 0.0) + (p.storage or 0.0)
        total = len(groups) + len(symbols) + len(users) + len(positions) + len(orders) + len(deals)
        self._phase("writing", total=total)
        with transaction.atomic():
            self.writer.lock()
            self.writer.replace(MirrorGroup, (self.rows.mt5_group(g) for g in groups),
                                ["name"], GROUP_FIELDS)
            self.writer.replace(MirrorSymbol, (self.rows.mt5_symbol(s) for s in symbols),
                                ["symbol"], SYMBOL_FIELDS)
            self.writer.replace(
                MirrorAccount, (self.rows.mt5_account(u, currency, floating) for u in users),
                ["login"], ACCOUNT_FIELDS,
            )
            opened = [self.rows.mt5_position(p, group_of) for p in positions]
            opened += [self.rows.mt5_order(o, group_of) for o in orders]
            self.writer.replace(MirrorOpenTrade, opened, ["ticket"], OPEN_FIELDS)
            self.writer.merge(MirrorClosedTrade,
                              [self.rows.mt5_deal(d, group_of) for d in deals],
                              ["ticket"], CLOSED_FIELDS)
            self.writer.set_state(
                sync_timestamp=reached, accounts_as_of=self.stamp, trades_as_of=self.stamp,
                history_as_of=self.stamp, last_full_at=self.stamp,
            )
            self.finish(server_timestamp_to=reached)

    def _fetch_each(self, fetch: Callable[[Any], Any], keys: list) -> list:
        """One read per key, a few in parallel (the client is thread-safe); NotFound → None."""

        def one(key):
            try:
                return fetch(key)
            except NotFound:
                return None

        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=MT5_FETCH_THREADS) as pool:
            return list(pool.map(one, keys))

