"""The permission matrix: every URL that accepts POST x every kind of user x {a target inside
the grant, one outside it, one that does not exist}.

The URLs come from ``dashboard/urls.py`` (the crawler's world: a sandbox-backed mirror, real
logins and tasks); each is posted the body that would write if the post were let through (an
acknowledgement, a confirmed operation, a mail, a report, a plugin change...). Expected: allowed
only with the permission the view declares (``platforms.access.actions``) *and* the target in
scope; a target outside the grant or missing is a 404 whatever the role; a missing permission a
403; a user who is not staff goes to the login page. A refused post writes nothing: no row in any
table an action writes (tasks, approvals, alerts, audit events, mail and report jobs, snapshot
runs, list preferences) and no write call reaches the sandbox (its per-operation counters).

A view that accepts POST without declaring a permission fails ``test_every_post_url_declares``;
one missing from :data:`MATRIX` fails the matrix itself.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from django.apps import apps
from django.urls import reverse

from dashboard.urls import dashboard_patterns
from platforms.access.actions import declared, has_any
from platforms.access.roles import ROLE_PERMISSIONS
from platforms.sandbox import pipeline as _pipeline  # noqa: F401 - loads (registers) every operation
from platforms.sandbox.registry import REGISTRY
from platforms.trading.models import TaskState, TradeTask
from tests.access.test_crawler import MASKS, World, world  # noqa: F401 (world is a fixture)
from tests.factories import StaffUserFactory, grant

pytestmark = pytest.mark.django_db

#: every table a POST view writes: a refused post leaves each count as it was
WRITTEN = ["platforms.TradeTask", "platforms.TaskApproval", "platforms.MarginAlert",
           "platforms.AuditEvent", "platforms.MailJob", "platforms.MailRecipient",
           "platforms.ReportJob", "platforms.SnapshotRun", "dashboard.ListPreference",
           "dashboard.TimeZonePreference"]
#: sandbox operations that change something upstream
WRITE_OPS = {op.name for op in REGISTRY.values() if op.write}
PASSWORD = "correct-horse-battery"  # tests.factories.StaffUserFactory's
MISSING_PK = "999999999"
TARGETS = ("allowed", "excluded", "missing")


@dataclass(frozen=True)
class Row:
    """One line of the matrix: a URL name, the path values it changes, and a body that writes."""

    name: str
    #: the permissions that open it (any one), as README's role table states them
    needs: tuple[str, ...]
    path: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)
    #: which path value names the target (login, task) — else the platform itself; None: the
    #: user's own setting, with no target to be outside the scope (only "allowed" is posted)
    target: str | None = "pk"

    @property
    def key(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.path.items())
        return f"{self.name}[{extra}]" if extra else self.name


def _matrix(allowed: int) -> list[Row]:
    rid = {"request_id": str(uuid.uuid4()), "confirm": "1", "password": PASSWORD}
    return [
        Row("account-columns", ("view_tradeplatform",), body={"columns": ["login", "group"]}),
        Row("time-zone", ("view_tradeplatform",), body={"view": "utc"}, target=None),
        Row("margin-alert", ("acknowledge_alerts",), body={"action": "ack"}, target="login"),
        Row("margin-alert", ("acknowledge_alerts",), body={"action": "assign"},
            target="login"),
        Row("snapshot-run", ("run_snapshots",), body={"kind": "incremental"}),
        Row("hedge", ("operate_trades",), {"action": "open"},
            {**rid, "symbol": "EURUSD", "side": "buy", "volume": "0.01"}),
        Row("hedge", ("operate_trades",), {"action": "close"}, {**rid, "ticket": "1"}),
        Row("operation", ("operate_balance",), {"kind": "deposit"}, {**rid, "amount": "10"},
            target="login"),
        Row("operation", ("operate_trades",), {"kind": "open_order"},
            {**rid, "symbol": "EURUSD", "command": "Buy", "volume": "0.01"}, target="login"),
        Row("operation", ("edit_accounts",), {"kind": "enable"}, rid, target="login"),
        Row("platform-operation", ("edit_accounts",), {"kind": "bulk_enable"},
            {**rid, "logins": str(allowed)}),
        Row("platform-operation", ("edit_accounts",), {"kind": "create_account"},
            {**rid, "name": "New", "group": "real\\usd-std", "leverage": "100"}),
        *[Row("operation-task-action", ("approve_operations",), {"action": verb},
              {"note": "n"}, target="task_pk") for verb in ("approve", "reject")],
        # the tasks are deposits: cancelling is for their requester (who held the kind's
        # permission) or an approver; reconciling needs the kind's permission
        Row("operation-task-action", ("operate_balance", "approve_operations"),
            {"action": "cancel"}, {"note": "n"}, target="task_pk"),
        Row("operation-task-action", ("operate_balance",), {"action": "reconcile"},
            {"note": "n"}, target="task_pk"),
        Row("server-mail", ("send_messages",), body={
            "audience": "one", "login": str(allowed), "subject": "s", "body": "b",
            "sender_name": "Desk"}),
        Row("server-news", ("send_messages",), body={"topic": "t", "body": "b"}),
        Row("server-plugin", ("manage_plugins",), body={"param-0": "changed", "apply": "1"}),
        Row("server-command", ("manage_plugins",), body={"encoding": "hex", "payload": "00",
                                                         "confirm": "on"}),
        Row("server-reports", ("view_reports",), body={
            "date_from": "2024-01-01", "date_to": "2024-01-02", "scope": "account"}),
    ]


def post_url_names(client) -> set[str]:
    """URL names of ``dashboard/urls.py`` that accept POST (an anonymous POST is not a 405;
    it goes to the login page before any view runs, so nothing is written)."""
    names = set()
    for pattern in dashboard_patterns:
        kwargs = {n: ("1" if n not in ("symbol", "tab", "kind", "action", "table", "fmt")
                      else "x") for n in pattern.pattern.converters}
        if client.post(reverse(f"dashboard:{pattern.name}", kwargs=kwargs)).status_code != 405:
            names.add(pattern.name)
    return names


def test_every_post_url_declares_its_permission(client):
    posting = post_url_names(client)
    declared_names = {p.name for p in dashboard_patterns if declared(p.callback) is not None}
    assert posting, "no URL accepts POST: the probe is broken"
    assert posting - declared_names == set(), "POST views without an @action declaration"
    assert posting == {row.name for row in _matrix(1)}, "the matrix must cover every POST URL"


def _users(crawl: World) -> dict[str, object]:
    """One user per role and a staff user without a role, each granted the MT4 platform under
    the crawler's group masks (not the MT5 one); a user who is not staff, granted the same."""
    users = {role: grant(StaffUserFactory(username=f"matrix-{role}"), crawl.mt4,
                         group_masks=MASKS, role=role) for role in ROLE_PERMISSIONS}
    users["staff"] = grant(StaffUserFactory(username="matrix-staff"), crawl.mt4,
                           group_masks=MASKS)
    users["non-staff"] = grant(StaffUserFactory(username="matrix-customer", is_staff=False),
                               crawl.mt4, role="admin")
    return users


def _counts(control: httpx.Client) -> tuple:
    """Rows of every table an action writes, and write calls the sandbox has received."""
    rows = tuple(apps.get_model(label).objects.count() for label in WRITTEN)
    stats = control.get("/stats").raise_for_status().json()["operations"]
    return rows, sum(v["received"] for k, v in stats.items() if k in WRITE_OPS)


def _path(row: Row, target: str, crawl: World, base: dict[str, str],
          tasks: dict[str, TradeTask]) -> dict[str, str]:
    names = next(p for p in dashboard_patterns if p.name == row.name).pattern.converters
    kwargs = {n: base[n] for n in names}
    kwargs.update(row.path)
    if "task_pk" in kwargs:
        kwargs["task_pk"] = str(tasks["allowed"].pk)
    if target == "allowed":
        return kwargs
    if row.target == "pk":
        kwargs["pk"] = str(crawl.mt5.pk) if target == "excluded" else MISSING_PK
    elif row.target == "login":
        kwargs["login"] = str(crawl.named if target == "excluded" else crawl.ghost_login)
    else:
        kwargs["task_pk"] = str(tasks["excluded"].pk) if target == "excluded" else MISSING_PK
    return kwargs


def test_permission_matrix(client, world, clean_sandbox):  # noqa: F811 (world: the fixture)
    started = time.monotonic()
    users = _users(world)
    base: dict[str, str] = {}
    for crawled in world.targets:  # real path values: the crawler's allowed login, its ids
        for name, value in crawled.kwargs.items():
            base.setdefault(name, value)
    allowed_login = int(base["login"])
    requester = StaffUserFactory(username="matrix-requester", is_superuser=True)
    tasks = {
        "allowed": TradeTask.objects.create(
            platform=world.mt4, login=allowed_login, kind="deposit", payload={"amount": "10"},
            fingerprint="m1", state=TaskState.PENDING_APPROVAL, requested_by=requester),
        "excluded": TradeTask.objects.create(
            platform=world.mt4, login=world.named, kind="deposit", payload={"amount": "10"},
            fingerprint="m2", state=TaskState.PENDING_APPROVAL, requested_by=requester),
    }
    control = httpx.Client(base_url=clean_sandbox.control_url, timeout=30)
    problems: list[str] = []
    requests = 0
    for row in _matrix(allowed_login):
        for who, user in users.items():
            client.force_login(user)
            for target in TARGETS if row.target else TARGETS[:1]:
                kwargs = _path(row, target, world, base, tasks)
                url = reverse(f"dashboard:{row.name}", kwargs=kwargs)
                codenames = row.needs
                if target == "allowed" and who == "admin":  # the declaration says the same
                    rule = declared(next(p for p in dashboard_patterns
                                         if p.name == row.name).callback)
                    said = set(rule.permissions(kwargs)) if rule else "no declaration"
                    if said != set(row.needs):
                        problems.append(f"{row.key} declares {said}, expected {row.needs}")
                before = _counts(control)
                response = client.post(url, row.body)
                requests += 1
                status = response.status_code
                where = f"{who:9} {target:8} POST {row.key}"
                if status >= 500:
                    problems.append(f"{where}: HTTP {status}")
                    continue
                location = response.get("Location", "")
                if who == "non-staff":
                    expected_ok = status == 302 and location.startswith(reverse("login"))
                    verdict = "refused"
                elif target != "allowed":
                    expected_ok, verdict = status == 404, "refused"
                elif not has_any(user, codenames):
                    expected_ok, verdict = status == 403, "refused"
                else:
                    expected_ok = status not in (403, 404) and not location.startswith(
                        reverse("login"))
                    verdict = "allowed"
                if not expected_ok:
                    problems.append(f"{where}: {status} {location}, expected {verdict} "
                                    f"(needs {codenames})")
                if verdict == "refused" and _counts(control) != before:
                    problems.append(f"{where}: refused ({status}) but something was written")
                # what an allowed post did is undone, so the next user meets the same world
                TradeTask.objects.filter(pk__in=[t.pk for t in tasks.values()]).update(
                    state=TaskState.PENDING_APPROVAL)
                apps.get_model("platforms.TaskApproval").objects.all().delete()
                apps.get_model("platforms.MarginAlert").objects.all().delete()
    elapsed = time.monotonic() - started
    rows = _matrix(allowed_login)
    print(f"permission matrix: {len({r.name for r in rows})} POST URLs in {len(rows)} rows x "
          f"{len(users)} users x {len(TARGETS)} targets = {requests} posts in {elapsed:.1f} s")
    assert problems == [], "\n".join(problems)
    # every permission an action needs is one a role holds (else nobody could act)
    granted = {c for codenames in ROLE_PERMISSIONS.values() for c in codenames}
    assert {c for row in rows for c in row.needs} <= granted


def test_the_readme_role_table_is_role_permissions():
    """README's "Roles and permissions" table says what ``ROLE_PERMISSIONS`` grants."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Roles and permissions", 1)[1].split("\n## ", 1)[0]
    header, *rows = [line for line in section.splitlines() if line.startswith("| ")]
    roles = [cell.strip() for cell in header.strip("|").split("|")][1:-1]
    table = {role: set() for role in roles}
    for line in rows:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for role, cell in zip(roles, cells[1:-1], strict=True):
            if cell:
                table[role].add(cells[0].strip("`"))
    assert table == {role: set(codenames) for role, codenames in ROLE_PERMISSIONS.items()}
