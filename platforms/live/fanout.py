"""Who gets what on ``/ws/live/``: the access gate applied to every row and event at fan-out.

The bridge publishes each platform's stream once to the channel layer; every socket then keeps
only what its user may see, through one :class:`~platforms.access.scope.Scope` (platform
grant, MT4 group masks, personal fields). These functions hold those rules so the consumer
stays a translator between the socket and the layer.

An account whose group is not known (no row, no mirror record, an MT5 margin row) is visible
only under a grant without masks (:meth:`Scope.allows_group`): unknown never means allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from platforms.access.scope import Scope
from platforms.live.groups import exposure_group, platform_group, quotes_group
from platforms.live.messages import Watch

#: Index of the account's group in a margin row ``[login, equity, margin, free, level,
#: level_type, group]``.
GROUP = 6
LEVEL_TYPE = 5


def row_visible(access: Scope, pk: int, row: list) -> bool:
    """May the user see this margin row (by the account's group)?"""
    return access.allows_group(pk, row[GROUP] or None)


@dataclass
class Subscription:
    """What one socket receives after its watch was checked against the user's scope: only
    platforms the user may see. Accounts are kept as asked: each of their rows and events is
    checked against the user's group masks as it passes (an account may change group)."""

    platforms: set[int] = field(default_factory=set)
    accounts: dict[int, set[int]] = field(default_factory=dict)
    symbols: dict[int, set[str]] = field(default_factory=dict)
    alerts: bool = False
    #: platforms whose net exposure the user may view and the page shows
    exposure: set[int] = field(default_factory=set)

    def channel_groups(self) -> set[str]:
        """The channel-layer groups to be in (and no other)."""
        wanted = {platform_group(pk) for pk in self.platforms}
        wanted |= {exposure_group(pk) for pk in self.exposure}
        return wanted | {quotes_group(pk) for pk, symbols in self.symbols.items() if symbols}


def subscribe(access: Scope, watch: Watch, *, exposure: bool = False
              ) -> tuple[Subscription, set[int], set[int]]:
    """(the subscription the user may have, the asked platforms refused, the asked exposure
    platforms refused). ``exposure``: may the user view net exposure at all (its role, from
    ``platforms.coverage.selectors.may_view_exposure``); the platform grant decides the rest."""
    allowed, denied = access.platform_ids(watch.asked_platforms())
    asked_exposure = set(watch.exposure)
    sub = Subscription(platforms=allowed, alerts=watch.alerts,
                       exposure=(asked_exposure & allowed) if exposure else set())
    for pk, logins in watch.accounts.items():
        if pk in allowed and logins:
            sub.accounts[pk] = set(logins)
    for pk, symbols in watch.symbols.items():
        if pk in allowed and symbols:
            sub.symbols[pk] = set(symbols)
    return sub, denied, asked_exposure - sub.exposure


def exposure_visible(access: Scope, pk: int, groups: Iterable[str | None] | None) -> bool:
    """May the user learn that platform ``pk``'s exposure changed? ``groups``: the groups of
    the client accounts whose trades changed it (None: a coverage account changed, which every
    user of the platform's exposure page sees)."""
    if groups is None:
        return access.allows_platform(pk)
    return any(access.allows_group(pk, group or None) for group in groups)


def snapshot_rows(
    access: Scope, pk: int, rows: Iterable[list], sub: Subscription
) -> tuple[list[list], set[int]]:
    """(rows of a snapshot this socket shows, logins outside Ok it may see)."""
    watched = sub.accounts.get(pk, set())
    shown: list[list] = []
    alerting: set[int] = set()
    unmasked = not access.platforms.get(pk, "").strip()
    for row in rows:
        if not (unmasked or row_visible(access, pk, row)):
            continue
        if row[0] in watched or (sub.alerts and row[LEVEL_TYPE]):
            shown.append(row)
        if row[LEVEL_TYPE]:
            alerting.add(row[0])
    return shown, (alerting if sub.alerts else set())


def batch_rows(
    access: Scope, pk: int, rows: Iterable[list], sub: Subscription, alerting: set[int]
) -> list[list]:
    """Rows of a ``margins.batch`` this socket forwards: watched accounts, and on an alert
    page every account entering or leaving a band; ``alerting`` is kept up to date."""
    watched = sub.accounts.get(pk, ())
    alerts = sub.alerts
    unmasked = not access.platforms.get(pk, "").strip()
    out = []
    for row in rows:
        login = row[0]
        watching = login in watched
        alerting_now = alerts and (row[LEVEL_TYPE] or login in alerting)
        if not (watching or alerting_now) or not (unmasked or row_visible(access, pk, row)):
            continue
        if alerting_now:
            if row[LEVEL_TYPE]:
                alerting.add(login)
            else:
                alerting.discard(login)
        out.append(row)
    return out


def account_event(
    access: Scope, pk: int, login: int, event: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The event as this user may see it (personal fields stripped unless permitted), or
    None when the account is outside the user's masks (or its group, which the bridge adds,
    is unknown to a masked user)."""
    group = event.get("group")
    if not access.allows_group(pk, group if isinstance(group, str) and group else None):
        return None
    return {"p": pk, "login": login, **access.fields(event)}
