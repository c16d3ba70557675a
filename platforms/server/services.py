"""Services for the MT4 x86-sidecar operations: internal mail and news, plugins, and the raw
external command. Every write is audited; mail goes out as a tracked bulk job.

Mail bodies are filled by :mod:`platforms.server.placeholders` (a fixed whitelist, no
template engine).
"""

from __future__ import annotations

import base64
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from platforms import audit
from platforms.client import ManagerApiError, MT4PluginConfig, MT4PluginParam
from platforms.connections import client_for
from platforms.mirror.models import MirrorAccount
from platforms.models import TradePlatform
from platforms.server import dispatch
from platforms.server.models import JobState, MailJob, MailRecipient
from platforms.server.placeholders import recipient_values, render_template, uses_placeholders

log = logging.getLogger(__name__)

#: ``MailSend`` accepts 1..10,000 logins per call.
MAIL_CHUNK = 10_000


# --------------------------------------------------------------------------- mail jobs


@transaction.atomic
def create_mail_job(
    *, actor: audit.Actor, platform: TradePlatform, accounts: Iterable, subject: str,
    body: str, sender_name: str, audience: str,
) -> MailJob:
    """Store the job and its recipients, audit it, and queue it on ``reporting`` at commit."""
    job = MailJob.objects.create(
        platform=platform, requested_by=actor.user, subject=subject, body_template=body,
        sender_name=sender_name, audience=audience[:500],
    )
    logins = sorted({a.login for a in accounts})
    MailRecipient.objects.bulk_create(
        [MailRecipient(job=job, login=login) for login in logins], batch_size=2000
    )
    job.recipients_total = len(logins)
    job.save(update_fields=["recipients_total"])
    audit.record(actor=actor, action="mail.queue", platform=platform,
                 target=f"mail job #{job.pk}",
                 after={"subject": subject, "recipients": len(logins), "audience": audience,
                        "body_bytes": len(body.encode())})
    dispatch.send_mail_job_after_commit(job.pk)
    return job


def _batches(job: MailJob, pending: list[MailRecipient]) -> list[tuple[str, str, list[int]]]:
    """(subject, body, logins) per MailSend call: one rendering per distinct text, ≤10,000."""
    personal = uses_placeholders(job.subject) or uses_placeholders(job.body_template)
    if not personal:
        logins = [r.login for r in pending]
        return [(job.subject, job.body_template, logins[i:i + MAIL_CHUNK])
                for i in range(0, len(logins), MAIL_CHUNK)]
    accounts = {a.login: a for a in MirrorAccount.objects.filter(
        platform=job.platform, login__in=[r.login for r in pending])}
    by_text: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in pending:
        account = accounts.get(r.login)
        values = recipient_values(account) if account else {"login": str(r.login)}
        key = (render_template(job.subject, values), render_template(job.body_template, values))
        by_text[key].append(r.login)
    return [(subject, body, logins[i:i + MAIL_CHUNK])
            for (subject, body), logins in by_text.items()
            for i in range(0, len(logins), MAIL_CHUNK)]


def execute_mail_job(job_id: int) -> MailJob | None:
    """Send every recipient not yet sent (idempotent: re-running sends only what is left;
    each call carries an idempotency key made from the job and its first login)."""
    job = MailJob.objects.select_related("platform").filter(pk=job_id).first()
    if job is None or job.state in (JobState.SUCCEEDED,):
        return job
    job.state = JobState.RUNNING
    job.save(update_fields=["state"])
    pending = list(job.recipients.exclude(sent=True))
    client = client_for(job.platform)
    errors: list[str] = []
    for index, (subject, body, logins) in enumerate(_batches(job, pending)):
        try:
            client.mt4.mail_send(
                subject, body, logins, sender_name=job.sender_name or None,
                idempotency_key=f"mail-{job.pk}-{logins[0]}-{len(logins)}",
            )
        except ManagerApiError as exc:
            errors.append(str(exc))
            job.recipients.filter(login__in=logins).update(
                chunk=index, sent=False, error=str(exc)[:300])
        else:
            job.recipients.filter(login__in=logins).update(chunk=index, sent=True, error="")
    job.recipients_sent = job.recipients.filter(sent=True).count()
    job.recipients_failed = job.recipients.filter(sent=False).count()
    if not job.recipients_failed:
        job.state = JobState.SUCCEEDED
    elif job.recipients_sent:
        job.state = JobState.PARTIAL
    else:
        job.state = JobState.FAILED
    job.error = "; ".join(dict.fromkeys(errors))[:2000]
    job.finished_at = timezone.now()
    job.save()
    audit.record(actor=audit.Actor.system(), action="mail.send", platform=job.platform,
                 target=f"mail job #{job.pk}", outcome="ok" if not errors else "error",
                 after={"sent": job.recipients_sent, "failed": job.recipients_failed},
                 detail=job.error[:500])
    return job


def send_news(*, actor: audit.Actor, platform: TradePlatform, topic: str, body: str,
              category: str, high_priority: bool) -> None:
    """``NewsSend`` to every terminal; audited (also when it fails). Raises the API error."""
    after = {"topic": topic, "category": category, "high_priority": high_priority,
             "body_bytes": len(body.encode())}
    try:
        client_for(platform).mt4.news_send(topic, body, category=category or None,
                                           high_priority=high_priority)
    except ManagerApiError as exc:
        audit.record(actor=actor, action="news.send", platform=platform, target=topic[:100],
                     after=after, outcome="error", detail=str(exc)[:500])
        raise
    audit.record(actor=actor, action="news.send", platform=platform, target=topic[:100],
                 after=after)


# --------------------------------------------------------------------------- plugins


def plugin_values(param) -> dict[str, str]:
    return {p.name or "": p.value or "" for p in (param.params or [])}


@dataclass(frozen=True)
class ParamChange:
    name: str
    before: str | None
    after: str | None


def diff_params(before: dict[str, str], after: dict[str, str]) -> list[ParamChange]:
    names = list(dict.fromkeys([*before, *after]))
    return [ParamChange(n, before.get(n), after.get(n)) for n in names
            if before.get(n) != after.get(n)]


def update_plugin_params(*, actor: audit.Actor, platform: TradePlatform, pos: int,
                         new_values: dict[str, str]) -> list[ParamChange]:
    """Re-read the plugin's parameters, apply ``new_values`` with ``CfgUpdatePlugin`` and audit
    before/after. Returns the changes (empty: nothing sent)."""
    client = client_for(platform)
    current = client.mt4.plugin_param_get(pos)
    before = plugin_values(current)
    changes = diff_params(before, {**before, **new_values})
    if not changes:
        return []
    merged = {**before, **new_values}
    param = MT4PluginParam(
        plugin=current.plugin,
        params=[MT4PluginConfig(name=n, value=v) for n, v in merged.items()],
    )
    file = current.plugin.file if current.plugin else f"#{pos}"
    try:
        client.mt4.cfg_update_plugin(param)
    except ManagerApiError as exc:
        audit.record(actor=actor, action="plugin.update", platform=platform, target=file,
                     before=before, after=merged, outcome="error", detail=str(exc)[:500])
        raise
    audit.record(actor=actor, action="plugin.update", platform=platform, target=file,
                 before=before, after=merged)
    return changes


# --------------------------------------------------------------------------- external command


@dataclass(frozen=True)
class CommandReply:
    data: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()

    @property
    def hex(self) -> str:
        return self.data.hex(" ")


def send_external_command(*, actor: audit.Actor, platform: TradePlatform,
                          data: bytes) -> CommandReply:
    """``ExternalCommandBinary``; audited with the payload's size and first bytes only."""
    sent = {"bytes": len(data), "head_hex": data[:32].hex()}
    try:
        result = client_for(platform).mt4.external_command_binary(data)
    except ManagerApiError as exc:
        audit.record(actor=actor, action="plugin.external_command", platform=platform,
                     after=sent, outcome="error", detail=str(exc)[:500])
        raise
    reply = getattr(result.data, "data", None) or b""
    audit.record(actor=actor, action="plugin.external_command", platform=platform,
                 after={**sent, "reply_bytes": len(reply)})
    return CommandReply(bytes(reply))
