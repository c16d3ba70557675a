"""The crawler: every page, as five kinds of user, with hostile variants of every parameter.

For each URL name of ``dashboard/urls.py`` (real ids from a sandbox-backed mirror; the account
card's tab once per tab) it requests the page as a superuser, a dealer granted one platform, a
staff user with every permission but ``view_personal_data`` on that platform, a support user
granted one platform minus one account group, and a staff user granted nothing; then,
as the superuser, it repeats every GET with each hostile value in each query parameter the page
actually reads (recorded while serving the plain page, plus any a hostile variant makes it read,
such as a filter form's fields once the query is not empty), hostile path ids, and repeated
parameters; the masked user names the excluded group and an excluded login in each parameter and
meets each hostile value in all of them at once. A page that never parses its query string as
that user gets every hostile value in one request.

It asserts what staff rely on: no 5xx anywhere; outside the grant a 404; no login outside the
user's group masks in any page or CSV; no personal field without ``view_personal_data`` (client
e-mails, phones and journal IPs, and the new e-mail and phone of an edit_profile task, which its
payload, its audit row, the audit CSV and a mail job's audience carry); and ``<script>`` never
comes back unescaped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.handlers.wsgi import WSGIRequest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from dashboard.urls import dashboard_patterns
from dashboard.views.accounts import TABS as ACCOUNT_TABS
from platforms.connections import client_for
from platforms.mirror.models import (
    MirrorAccount,
    MirrorClosedTrade,
    MirrorOpenTrade,
    MirrorSymbol,
)
from platforms.models import AuditEvent
from platforms.server.models import MailJob, ReportJob
from platforms.timezones import utc_to_server
from platforms.trading.models import TradeTask
from tests.factories import SnapshotRunFactory, StaffUserFactory, grant

pytestmark = pytest.mark.django_db

EXCLUDED_GROUP = "real\\usd-std"
MASKS = "real\\*,!real\\usd-std"
HUGE = "9" * 31
SCRIPT = "<script>alert(1)</script>"
SCRIPT_IN_PATH = "<script>alert(2)"  # a path segment cannot hold "/"
HOSTILE_VALUES = [
    "--login", "-", "zzz", "-1", "0", HUGE, "abc", "1e999", "2024-13-45", "2024-02-30T25:61",
    SCRIPT, "a\x00b", "x" * 10240, "%", "../../etc/passwd", "${7*7}", " ",
]
#: what an edit_profile task sets (its payload, audit row and a mail audience carry them) and
#: the address of the staff member who asked (kept by the audit trail)
NEW_EMAIL = "crawl.moved@newmail.example"
NEW_PHONE = "+44 7700 900456"
STAFF_IP = "203.0.113.9"
#: users without ``view_personal_data``: no page may show them a personal field
NO_PERSONAL = ("dealer", "no_personal")
#: pages whose payloads, audit values, mail audiences or journal lines carry personal data
#: (→ an extra query to fetch too, such as the CSV): see :func:`_check_payload_pages`
PAYLOAD_PAGES = {
    "operation-task": "", "operation-tasks": "", "operation-audit": "format=csv",
    "server-mail-job": "", "server-journal": "", "account-tab[audit]": "",
    "account-tab[journal]": "",
}
#: path converters → the hostile replacements of a real value
HOSTILE_PATH = {
    "pk": [HUGE, "0", "2147483648", str(2**63)],
    "login": [HUGE, "0", str(2**63)],
    "task_pk": [HUGE, str(2**63)],
    "run_id": [HUGE, str(2**63)],
    "job_id": [HUGE, str(2**63)],
    "pos": [HUGE, str(2**63)],
    "symbol": [SCRIPT_IN_PATH, "x" * 2000, "%00"],
    "tab": [SCRIPT_IN_PATH, "zzz"],
    "kind": [SCRIPT_IN_PATH, "zzz"],
    "action": [SCRIPT_IN_PATH, "zzz"],
    "table": [SCRIPT_IN_PATH, "zzz"],
    "fmt": [SCRIPT_IN_PATH, "zzz"],
}


def _logins_pattern(logins: set[int]) -> re.Pattern[str]:
    """A login as a whole number (not part of an amount, a list of digits or another login)."""
    alternatives = "|".join(str(login) for login in sorted(logins))
    return re.compile(rf"(?<![\d.,])(?:{alternatives})(?![\d.,])")


@dataclass(frozen=True)
class Target:
    """One page to crawl: a URL name with real path values (a name can give several pages, e.g.
    one per tab of the account card)."""

    key: str
    name: str
    kwargs: dict[str, str]

    def url(self, **override: str) -> str:
        return reverse(f"dashboard:{self.name}", kwargs={**self.kwargs, **override})


@dataclass
class World:
    mt4: object
    mt5: object
    users: dict[str, object]
    targets: list[Target]
    excluded_logins: set[int]
    ghost_login: int  # a login no account of the platform has
    emails: set[str]
    phones: set[str]
    ips: set[str]
    requests: int = 0
    problems: list[str] = field(default_factory=list)
    #: one pass over a body finds any excluded login / personal field (a search per login,
    #: over thousands of bodies, was a fifth of the crawl's time)
    excluded_pattern: re.Pattern[str] = field(init=False)
    #: the excluded login the masked user asks for (in paths and filters), and the pattern of
    #: all the other excluded logins
    named: int = field(init=False)
    excluded_but_named: re.Pattern[str] = field(init=False)
    personal_pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        assert self.excluded_logins and self.emails, "nothing to leak: the crawl proves no scope"
        self.excluded_pattern = _logins_pattern(self.excluded_logins)
        self.named = min(self.excluded_logins)
        self.excluded_but_named = _logins_pattern(self.excluded_logins - {self.named})
        assert self.ips, "the journal names no client address: the crawl proves no masking"
        secrets = sorted((*self.emails, *self.phones), key=len, reverse=True)
        addresses = "|".join(map(re.escape, sorted(self.ips)))
        self.personal_pattern = re.compile(
            "|".join(map(re.escape, secrets)) + rf"|(?<![\d.])(?:{addresses})(?![\d.])")


def _mirror_from_sandbox(mt4) -> list[MirrorAccount]:
    """The sandbox's accounts (real logins, groups, emails) as mirror rows."""
    client = client_for(mt4)
    now = timezone.now()
    rows = [
        MirrorAccount(platform=mt4, login=u.login, name=u.name or "", group=u.group or "",
                      email=u.email or "", phone=u.phone or "", country=u.country or "",
                      currency="USD", leverage=u.leverage, balance=u.balance, equity=u.balance,
                      margin=0.0, free_margin=u.balance, margin_level=None, margin_state="Ok",
                      last_seen_at=now)
        for u in client.mt4.iter_users()
    ]
    MirrorAccount.objects.bulk_create(rows)
    trades = []
    closed = []
    for i, row in enumerate(rows[:60]):
        trades.append(MirrorOpenTrade(
            platform=mt4, ticket=9_000_000 + i, login=row.login, group=row.group,
            symbol="EURUSD", digits=5, command="Buy", volume=100, volume_lots=1.0,
            open_price=1.1,
            current_price=1.1, profit=1.0, open_time=now, last_seen_at=now))
        closed.append(MirrorClosedTrade(
            platform=mt4, ticket=9_500_000 + i, login=row.login, group=row.group,
            symbol="EURUSD", digits=5, command="Sell", volume_lots=1.0, open_price=1.1,
            close_price=1.09,
            profit=10.0, state="ClosedNormal", open_time=now, close_time=now,
            last_seen_at=now))
    MirrorOpenTrade.objects.bulk_create(trades)
    MirrorSymbol.objects.create(platform=mt4, symbol="EURUSD", description="Euro vs US Dollar",
                                digits=5, last_seen_at=now)
    MirrorClosedTrade.objects.bulk_create(closed)
    return rows


def _journal_logins(mt4) -> dict[int, str]:
    """Login → client address, from the login lines of the sandbox's journal."""
    now = timezone.now()
    minutes = mt4.utc_offset_minutes  # the server reads the range on its own clock
    lines = client_for(mt4).mt4.journal_request(utc_to_server(now - timedelta(days=1), minutes),
                                                utc_to_server(now, minutes), mode="Logins")
    found = ((re.match(r"'(\d+)': login", line.message or ""), line.ip) for line in lines)
    return {int(match.group(1)): ip for match, ip in found if match and ip}


@pytest.fixture
def world(sandbox_platforms) -> World:
    mt4, mt5 = sandbox_platforms
    rows = _mirror_from_sandbox(mt4)
    online = _journal_logins(mt4)
    # an account whose journal (on its card's tab) names the address it logged in from
    allowed = next(r for r in rows if r.group.startswith("real\\") and r.group != EXCLUDED_GROUP
                   and r.login in online)
    superuser = StaffUserFactory(username="crawl-root", is_superuser=True)
    dealer = grant(StaffUserFactory(username="crawl-dealer"), mt4, role="dealer")
    masked = grant(StaffUserFactory(username="crawl-masked"), mt4, group_masks=MASKS,
                   role="support")
    no_personal = grant(StaffUserFactory(username="crawl-no-personal"), mt4)
    no_personal.user_permissions.set(Permission.objects.filter(
        content_type__app_label="platforms").exclude(codename="view_personal_data"))
    nobody = StaffUserFactory(username="crawl-nobody")
    # personal data inside payloads: a profile change (the task page shows its payload) ...
    task = TradeTask.objects.create(
        platform=mt4, login=allowed.login, kind="edit_profile", fingerprint="x",
        payload={"email": NEW_EMAIL, "phone": NEW_PHONE, "comment": "moved"},
        result={"login": allowed.login}, state="rejected", requested_by=superuser,
        message=f"refused: {NEW_EMAIL} is taken")
    hidden = next(r for r in rows if r.group == EXCLUDED_GROUP)
    # what a masked user must never see: a task and audit events about an excluded account
    TradeTask.objects.create(
        platform=mt4, login=hidden.login, kind="deposit", payload={"amount": "20"},
        fingerprint="y", state="rejected", requested_by=superuser)
    AuditEvent.objects.create(platform=mt4, action="operation.deposit", target=str(hidden.login),
                              actor=superuser, outcome="rejected")
    # ... its audit row (before/after, the requester's address, the detail) ...
    AuditEvent.objects.create(
        platform=mt4, action="trade_task.edit_profile", target=str(allowed.login),
        actor=superuser, outcome="ok", ip_address=STAFF_IP,
        before={"email": allowed.email, "phone": allowed.phone},
        after={"kind": "edit_profile", "email": NEW_EMAIL, "phone": NEW_PHONE},
        detail=f"was {allowed.email}")
    run = SnapshotRunFactory(platform=mt4, state="succeeded")
    # ... and a mail job addressed by searching the accounts list for an e-mail
    mail = MailJob.objects.create(platform=mt4, requested_by=superuser, subject="s",
                                  body_template="b", audience=f"accounts list ?q={NEW_EMAIL}")
    report = ReportJob.objects.create(platform=mt4, requested_by=superuser, scope="account",
                                      date_from="2024-01-01", date_to="2024-01-31",
                                      state="succeeded", result={"rows": [], "days": []})
    base = {"pk": str(mt4.pk), "login": str(allowed.login), "task_pk": str(task.pk),
            "run_id": str(run.pk), "job_id": str(mail.pk), "pos": "0", "symbol": "EURUSD",
            "tab": "open", "kind": "deposit", "action": "cancel", "table": "accounts",
            "fmt": "csv"}
    targets = []
    for pattern in dashboard_patterns:
        names = pattern.pattern.converters.keys()
        kwargs = {n: base[n] for n in names}
        if "job_id" in kwargs and pattern.name.startswith("server-report"):
            kwargs["job_id"] = str(report.pk)
        if pattern.name == "platform-operation":
            kwargs["kind"] = "bulk_group"
        targets.append(Target(pattern.name, pattern.name, kwargs))
        if "tab" in kwargs:  # every tab of the account card, each with its own filters
            targets += [Target(f"{pattern.name}[{tab}]", pattern.name, {**kwargs, "tab": tab})
                        for tab in ACCOUNT_TABS if tab != kwargs["tab"]]
    return World(
        mt4=mt4, mt5=mt5,
        users={"superuser": superuser, "dealer": dealer, "no_personal": no_personal,
               "masked": masked, "nobody": nobody},
        targets=targets,
        excluded_logins={r.login for r in rows if r.group == EXCLUDED_GROUP},
        ghost_login=max(r.login for r in rows) + 1,
        emails={NEW_EMAIL, *(r.email for r in rows if r.email)},
        phones={NEW_PHONE, *(r.phone for r in rows if len(r.phone) > 5)},
        ips={STAFF_IP, *online.values()},
    )


class Recorder:
    """Records, for one request, whether the view touched ``request.GET`` at all and which query
    keys it read (every QueryDict read)."""

    def __init__(self, monkeypatch):
        self.touched = False
        self.keys: set[str] = set()
        recorder = self
        original_get, original_getitem = QueryDict.get, QueryDict.__getitem__
        original_getlist = QueryDict.getlist
        parse_query = WSGIRequest.__dict__["GET"].real_func

        def query(self):
            recorder.touched = True
            return parse_query(self)

        def get(self, key, default=None):
            recorder.keys.add(key)
            return original_get(self, key, default)

        def getitem(self, key):
            recorder.keys.add(key)
            return original_getitem(self, key)

        def getlist(self, key, default=None):
            recorder.keys.add(key)
            return original_getlist(self, key, default)

        lazy_query = cached_property(query)
        lazy_query.__set_name__(WSGIRequest, "GET")
        monkeypatch.setattr(WSGIRequest, "GET", lazy_query)
        monkeypatch.setattr(QueryDict, "get", get)
        monkeypatch.setattr(QueryDict, "__getitem__", getitem)
        monkeypatch.setattr(QueryDict, "getlist", getlist)

    def reset(self) -> None:
        self.touched = False
        self.keys = set()


def _check(world: World, who: str, url: str, response, *, named: bool = False) -> str:
    """Record what is wrong with one answer; returns its body. ``named``: the query names
    ``world.named`` (the page may echo it: :func:`_name_the_excluded_login` judges that one)."""
    world.requests += 1
    status = response.status_code
    if status >= 500:
        world.problems.append(f"{who} {url[:200]}: HTTP {status}")
        return ""
    content_type = response.get("Content-Type", "")
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content).decode(errors="replace")
    else:
        body = response.content.decode(errors="replace")
    if "html" in content_type and (SCRIPT in body or SCRIPT_IN_PATH in body):
        world.problems.append(f"{who} {url[:200]}: <script> echoed unescaped")
    excluded = world.excluded_but_named if named else world.excluded_pattern
    if who == "masked" and (leak := excluded.search(body)):
        world.problems.append(f"{who} {url[:200]}: shows excluded login {leak.group()}")
    if who in NO_PERSONAL and (leak := world.personal_pattern.search(body)):
        world.problems.append(f"{who} {url[:200]}: shows personal data {leak.group()!r}")
    return body


def _get(client, world: World, who: str, url: str, query: str = "", *, named: bool = False,
         htmx: bool = False):
    """GET ``url`` (as the page's htmx partial when ``htmx``) and check the answer."""
    full = f"{url}?{query}" if query else url
    try:
        response = client.get(full, headers={"HX-Request": "true"} if htmx else None)
    except Exception as exc:
        world.problems.append(f"{who} {full[:200]}: {type(exc).__name__}: {exc}"[:400])
        return None
    response.crawled_body = _check(world, who, full, response, named=named)
    return response


def _name_the_excluded_login(client, world: World, url: str, key: str) -> None:
    """As the masked user, put an excluded login in ``key``: the page may echo what was typed
    (a form's field, the CSV link), so it must show that login exactly as often as it shows a
    login that exists nowhere when that one is typed instead, and no other excluded login."""
    shown = []
    for login in (world.named, world.ghost_login):
        response = _get(client, world, "masked", url, QueryDict.fromkeys([key], str(login))
                        .urlencode(), named=login == world.named)
        if response is None:
            return
        shown.append(len(_logins_pattern({login}).findall(response.crawled_body)))
    if shown[0] != shown[1]:
        world.problems.append(f"masked {url[:200]}?{key}=<an excluded login>: shows it "
                              f"{shown[0]} times, a login that exists nowhere {shown[1]} times")


def _scope_probe(client, world: World, who: str, url: str):
    """GET, or POST (empty form) where the page only takes POST: scope is decided first."""
    response = _get(client, world, who, url)
    if response is not None and response.status_code == 405:
        try:
            response = client.post(url, {})
        except Exception as exc:
            world.problems.append(f"{who} POST {url[:200]}: {type(exc).__name__}: {exc}"[:400])
            return None
        _check(world, who, f"POST {url}", response)
    return response


def _check_payload_pages(client, world: World) -> None:
    """The pages that show payloads, also as their htmx partial (the account card's tabs fill in
    only through it) and their CSV: the superuser finds the personal data planted in each (else
    the check proves nothing there); a user without ``view_personal_data`` who holds every other
    permission reaches each and finds none (``_check`` looks)."""
    for who in ("superuser", "no_personal"):
        client.force_login(world.users[who])
        for target in world.targets:
            if target.key not in PAYLOAD_PAGES:
                continue
            url = target.url()
            variants = [("", False), ("", True)]
            if query := PAYLOAD_PAGES[target.key]:
                variants.append((query, False))
            bodies = []
            for query, htmx in variants:
                response = _get(client, world, who, url, query, htmx=htmx)
                if response is None:
                    continue
                if response.status_code != 200:
                    world.problems.append(f"{who} {target.key} {query} (htmx={htmx}): "
                                          f"{response.status_code}, not 200")
                bodies.append(response.crawled_body)
            if who == "superuser" and not any(map(world.personal_pattern.search, bodies)):
                world.problems.append(f"superuser {target.key}: the personal data planted "
                                      "there does not show")


#: the keys tried on a page that reads none (a read the recorder cannot see still meets them)
FALLBACK_KEYS = ["sort", "page"]


def _hostile_queries(keys: list[str], values: tuple[str, ...] = tuple(HOSTILE_VALUES)
                     ) -> Iterator[str]:
    """Each value alone in each key, then each key repeated."""
    for key in keys:
        for value in values:
            yield QueryDict.fromkeys([key], value).urlencode()
        yield f"{key}=1&{key}=--x&{key}={HUGE}"


#: every hostile value in one query string, for a page that never touches ``request.GET``: what
#: is never parsed cannot change the page, so one request shows it still ignores them all
ALL_AT_ONCE = "&".join(_hostile_queries(FALLBACK_KEYS))


@pytest.mark.timeout(900)  # ~2.5 min on an idle CI box; a loaded one doubles it
def test_every_page_survives_hostile_input_and_keeps_scope(client, world, monkeypatch):
    started = time.monotonic()
    recorder = Recorder(monkeypatch)
    #: (user, target) → did the plain page touch request.GET, which keys did it read
    reads: dict[tuple[str, str], tuple[bool, set[str]]] = {}
    # 1. every page, every user, real ids
    for who, user in world.users.items():
        client.force_login(user)
        for target in world.targets:
            url = target.url()
            recorder.reset()
            response = (_scope_probe(client, world, who, url) if who == "nobody"
                        else _get(client, world, who, url))
            reads[who, target.key] = (recorder.touched, set(recorder.keys))
            if response is None:
                continue
            platform_page = "pk" in target.kwargs
            if who == "nobody" and platform_page and response.status_code != 404:
                world.problems.append(f"nobody {url}: {response.status_code}, not 404")
        # a platform outside the grant is a 404 on every platform page
        if who in ("dealer", "masked"):
            for target in world.targets:
                if "pk" not in target.kwargs:
                    continue
                response = _scope_probe(client, world, who, target.url(pk=str(world.mt5.pk)))
                if response is not None and response.status_code != 404:
                    world.problems.append(
                        f"{who} {target.key} on an ungranted platform: {response.status_code}")
    _check_payload_pages(client, world)
    # the recorder sees request.GET being parsed wherever a key was read (else "untouched"
    # below would wrongly spare pages the full set of hostile values)
    assert all(touched for (who, _), (touched, keys) in reads.items()
               if who in ("superuser", "masked") and keys - {"csrfmiddlewaretoken"}), reads
    # the masked user: an excluded account is a 404 wherever a login is in the path
    client.force_login(world.users["masked"])
    for target in world.targets:
        if "login" in target.kwargs:
            response = _scope_probe(client, world, "masked", target.url(login=str(world.named)))
            if response is not None and response.status_code != 404:
                world.problems.append(
                    f"masked {target.key} of an excluded account: {response.status_code}")
    # 2. hostile input, as the superuser and as the masked user: every value in every key the
    # page reads as that user (for the masked user also those it reads as the superuser, and
    # the excluded group and login as filters: asking for them by name must show nothing)
    # The superuser meets each hostile value alone in each key (a 5xx hides behind no other
    # key's refusal); the masked user meets each scope probe alone in each key, and each hostile
    # value in every key at once: what scope must survive is the value, not which key holds it
    # (a filter that drops the scope on a bad value drops it with its neighbours bad too).
    per_key = {"superuser": tuple(HOSTILE_VALUES),
               "masked": (EXCLUDED_GROUP, "real\\usd*", "*", "!real\\*")}
    variants = fuzzed = 0
    for who in ("superuser", "masked"):
        client.force_login(world.users[who])
        for target in world.targets:
            url = target.url()
            touched, keys = reads[who, target.key]
            if not touched:
                recorder.reset()
                _get(client, world, who, url, ALL_AT_ONCE)
                variants += 1
                touched, keys = recorder.touched, set(recorder.keys)
            if touched:  # the page parses its query: each value alone, in each key
                fuzzed += 1
                keys = keys | reads["superuser", target.key][1]
                # a filter form binds only to a non-empty query: the keys it reads then are
                # read, so they are fuzzed too
                pending = sorted(keys - {"csrfmiddlewaretoken"}) or list(FALLBACK_KEYS)
                seen = set(pending) | {"csrfmiddlewaretoken"}
                while pending:
                    key = pending.pop(0)
                    for query in _hostile_queries([key], per_key[who]):
                        recorder.reset()
                        _get(client, world, who, url, query)
                        variants += 1
                        pending += sorted(recorder.keys - seen)
                        seen |= recorder.keys
                    if who == "masked":
                        _name_the_excluded_login(client, world, url, key)
                        variants += 2
                if who == "masked":
                    every_key = sorted(seen - {"csrfmiddlewaretoken"})
                    for value in HOSTILE_VALUES:
                        _get(client, world, who, url,
                             QueryDict.fromkeys(every_key, value).urlencode())
                        variants += 1
            if who == "superuser":
                for name, bad_values in HOSTILE_PATH.items():
                    if name not in target.kwargs:
                        continue
                    for bad in bad_values:
                        _get(client, world, who, target.url(**{name: bad}))
                        variants += 1
    elapsed = time.monotonic() - started
    print(f"crawler: {len(world.targets)} pages of {len(dashboard_patterns)} URL names, "
          f"{world.requests} requests ({variants} hostile variants; {fuzzed} page/user pairs "
          f"parse their query) in {elapsed:.1f} s")
    assert world.problems == [], "\n".join(world.problems[:400])
    assert world.requests > 1000  # the crawl really covered the site
    assert fuzzed >= 20  # and most listing pages met every hostile value in every key
