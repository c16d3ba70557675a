"""The form crawler: every URL that accepts POST, each of the crawler's hostile values in each
field its view reads, posted by a user allowed to post (a superuser).

Each URL is posted a *dry* body first — everything a real post carries except the switch that
commits (``confirm``, ``apply``; ``preview`` for mail), or nothing at all where the view has no
such step — and the keys the view reads are recorded (the query-string crawler's recorder sees
every read of a ``QueryDict``, form fields included). Then every hostile value goes into every
key read, alone in the dry body, plus a key repeated. It asserts: no 5xx, ``<script>`` never comes
back unescaped, and nothing is written (no row in any table an action writes, no write call to
the sandbox). ``test_every_post_url_is_crawled`` keeps the list of URLs complete.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from django.http import QueryDict
from django.urls import reverse

from dashboard.urls import dashboard_patterns
from tests.access.test_crawler import (  # noqa: F401 (world is a fixture)
    HOSTILE_VALUES,
    HUGE,
    SCRIPT,
    World,
    world,
)
from tests.access.test_permission_matrix import _counts, post_url_names

pytestmark = pytest.mark.django_db

#: a login beyond what the database can hold, a digit int() refuses, dates whose neighbours
#: do not exist, numbers a Decimal takes but a form must not
EXTRA_VALUES = [str(2**63), "1 2 ²", "9999-12-31", "0001-01-01", "NaN", "Infinity"]


#: keys whose mere presence commits (the confirmation step's button, the plugin's "apply"):
#: the dry body leaves them out, and no value is put in them
COMMIT = {"confirm", "apply"}


class PostRecorder:
    """The keys a view reads from ``request.POST`` (form fields read it through ``get`` and
    ``getlist``); reads of other QueryDicts (the query string) are told apart by identity."""

    def __init__(self, monkeypatch) -> None:
        self.reads: list[tuple[int, str]] = []
        recorder = self
        for method in ("get", "getlist", "__getitem__", "__contains__"):
            original = getattr(QueryDict, method)

            def spy(qd, key, *args, _original=original):
                recorder.reads.append((id(qd), key))
                return _original(qd, key, *args)

            monkeypatch.setattr(QueryDict, method, spy)

    def post_keys(self, response) -> set[str]:
        post = id(response.wsgi_request.POST)
        keys = {key for owner, key in self.reads if owner == post}
        self.reads = []
        return keys - {"csrfmiddlewaretoken"}


@dataclass(frozen=True)
class Form:
    """A POST URL (with the path values that pick its form) and its dry body."""

    name: str
    path: dict[str, str] = field(default_factory=dict)
    dry: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.path.items())
        return f"{self.name}[{extra}]" if extra else self.name


def _forms(allowed: int) -> list[Form]:
    rid = {"request_id": str(uuid.uuid4())}
    account_kinds = {
        "credit_in": {"amount": "10", "comment": "c", "expiration": "2100-01-01"},
        "place_pending": {"symbol": "EURUSD", "command": "BuyLimit", "volume": "0.01",
                          "price": "0.5"},
        "modify_order": {"order": "1", "sl": "0.5"},
        "edit_profile": {"name": "N", "email": "a@example.com"},
        "reset_password": {"new_password": "abcdef1"},
    }
    platform_kinds = {
        "create_account": {"name": "N", "group": "real\\usd-std", "leverage": "100"},
        "bulk_group": {"logins": str(allowed), "group": "real\\usd-std"},
    }
    return [
        Form("account-columns", dry={"columns": "login", "query": "sort=login"}),
        Form("time-zone"),  # no dry step: no hostile value names a time view

        Form("margin-alert"),  # its one field commits: each hostile action alone
        Form("snapshot-run"),
        *[Form("hedge", {"action": a}, {**rid, **body}) for a, body in (
            ("open", {"symbol": "EURUSD", "side": "buy", "volume": "0.01", "price": "1"}),
            ("modify", {"bridge_task_id": "t1", "volume": "0.01", "sl": "1", "tp": "2"}),
            ("close", {"ticket": "1"}))],
        *[Form("operation", {"kind": k}, {**rid, **body}) for k, body in account_kinds.items()],
        *[Form("platform-operation", {"kind": k}, {**rid, **body})
          for k, body in platform_kinds.items()],
        Form("operation-task-action", {"action": "reconcile"}, {"note": "n"}),
        Form("server-mail", dry={"audience": "one", "login": str(allowed), "logins": "",
                                 "query": "", "subject": "s", "body": "b",
                                 "sender_name": "Desk", "preview": "1"}),
        # no dry step: one required field left blank, so no hostile value completes the form
        Form("server-news", dry={"topic": ""}),
        Form("server-plugin", dry={"param-0": "x"}),
        Form("server-command", dry={"confirm": ""}),
        Form("server-reports", dry={"scope": ""}),
    ]


def test_every_post_url_is_crawled(client):
    assert post_url_names(client) == {form.name for form in _forms(1)}


def _bodies(dry: dict[str, str], key: str):
    for value in (*HOSTILE_VALUES, *EXTRA_VALUES):
        yield {**dry, key: value}
    yield {**dry, key: ["1", "--x", HUGE]}


@pytest.mark.timeout(900)
def test_every_form_field_survives_hostile_input(client, world, clean_sandbox, monkeypatch):  # noqa: F811
    started = time.monotonic()
    recorder = PostRecorder(monkeypatch)
    control = httpx.Client(base_url=clean_sandbox.control_url, timeout=30)
    crawl: World = world
    client.force_login(crawl.users["superuser"])
    base: dict[str, str] = {}
    for crawled in crawl.targets:
        for name, value in crawled.kwargs.items():
            base.setdefault(name, value)
    allowed = int(base["login"])
    problems: list[str] = []
    timings: list[tuple[float, str]] = []
    posts = fields = 0
    for form in _forms(allowed):
        converters = next(p for p in dashboard_patterns if p.name == form.name).pattern.converters
        url = reverse(f"dashboard:{form.name}",
                      kwargs={**{n: base[n] for n in converters}, **form.path})
        form_started = time.monotonic()
        response = client.post(url, form.dry, HTTP_HX_REQUEST="true")
        if response.status_code >= 400 and response.status_code != 409 and form.dry:
            problems.append(f"{form.key}: the dry body is refused ({response.status_code})")
        keys = sorted(recorder.post_keys(response) | set(form.dry))
        if not keys:
            problems.append(f"{form.key}: reads no field")
        pending, seen = [k for k in keys if k not in COMMIT], set(keys) | COMMIT
        while pending:
            key = pending.pop(0)
            fields += 1
            before = _counts(control)
            for body in _bodies(form.dry, key):
                try:  # as htmx posts it: the view answers with its partial
                    response = client.post(url, body, HTTP_HX_REQUEST="true")
                except Exception as exc:  # the test client re-raises what would be a 500
                    problems.append(f"{form.key} {key}={str(body[key])[:40]!r}: "
                                    f"{type(exc).__name__}: {exc}"[:300])
                    continue
                posts += 1
                shown = f"{form.key} {key}={str(body[key])[:40]!r}"
                if response.status_code >= 500:
                    problems.append(f"{shown}: HTTP {response.status_code}")
                content = b"" if getattr(response, "streaming", False) else response.content
                if "html" in response.get("Content-Type", "") and SCRIPT.encode() in content:
                    problems.append(f"{shown}: <script> echoed unescaped")
                new = recorder.post_keys(response) - seen
                pending += sorted(new)
                seen |= new
            if _counts(control) != before:
                problems.append(f"{form.key} {key}: a hostile value wrote something")
        timings.append((time.monotonic() - form_started, form.key))
    elapsed = time.monotonic() - started
    print(f"form crawler: {len(_forms(allowed))} forms, {fields} fields, {posts} posts "
          f"in {elapsed:.1f} s")
    print("slowest:", ", ".join(f"{key} {t:.1f} s" for t, key in sorted(timings)[-3:]))
    assert problems == [], "\n".join(problems[:200])
    assert fields >= 60


def test_an_unknown_column_is_refused_and_the_saved_choice_kept(client):
    """The accounts list's column choice is a form field too: a name that is no column is a
    400, and the choice saved before stays as it was (an update is a write the crawler's row
    counts cannot see)."""
    from dashboard.models import ListPreference
    from tests.factories import StaffUserFactory, TradePlatformFactory, grant

    platform = TradePlatformFactory()
    client.force_login(grant(StaffUserFactory(), platform, role="dealer"))
    url = reverse("dashboard:account-columns", args=[platform.pk])
    assert client.post(url, {"columns": ["login", "group"]}).status_code == 302
    for hostile in ("zzz", SCRIPT, "email"):  # email: a personal column a dealer may not pick
        response = client.post(url, {"columns": ["login", hostile]})
        assert response.status_code == 400 and SCRIPT.encode() not in response.content
    assert ListPreference.objects.get().columns == ["login", "group"]
