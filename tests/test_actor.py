"""Who acts: one ``Actor`` for views, tasks and commands, recorded the same way by each."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from platforms import audit
from platforms.mirror.models import SnapshotRun
from platforms.mirror.runs import request_run
from platforms.models import AuditEvent
from tests.factories import StaffUserFactory, TradePlatformFactory

pytestmark = pytest.mark.django_db


def test_an_actor_of_a_request_is_its_user_and_address():
    user = StaffUserFactory()
    request = RequestFactory().post("/", REMOTE_ADDR="10.2.3.4")
    request.user = user
    assert audit.Actor.of(request) == audit.Actor(user, "10.2.3.4")
    request.META["REMOTE_ADDR"] = ""
    assert audit.Actor.of(request).ip is None  # no address rather than an empty one


def test_the_trail_records_the_user_and_address_and_never_an_anonymous_user():
    user = StaffUserFactory()
    signed_in = audit.record(actor=audit.Actor(user, "10.2.3.4"), action="test.signed_in")
    anonymous = audit.record(actor=audit.Actor(AnonymousUser(), "10.9.9.9"),
                             action="test.anonymous")
    system = audit.record(actor=audit.Actor.system(), action="test.system")
    nobody = audit.record(actor=None, action="test.none")
    stored = {e.action: (e.actor, e.ip_address) for e in AuditEvent.objects.all()}
    assert stored == {"test.signed_in": (user, "10.2.3.4"), "test.anonymous": (None, "10.9.9.9"),
                      "test.system": (None, None), "test.none": (None, None)}
    assert signed_in.pk and anonymous.pk and system.pk and nobody.pk


def test_a_service_records_a_worker_actor_as_it_records_a_view_actor(
        django_capture_on_commit_callbacks):
    """The same service, called with what a task knows (the requester and their address)
    rather than a request, writes the same trail; the system's call writes none."""
    user, platform = StaffUserFactory(), TradePlatformFactory()
    with django_capture_on_commit_callbacks(execute=False):
        run, created = request_run(platform, "full", actor=audit.Actor(user, "192.0.2.7"))
    assert created and (run.trigger, run.requested_by) == ("staff", user)
    event = AuditEvent.objects.get(action="snapshot.run")
    assert (event.actor, event.ip_address, event.platform) == (user, "192.0.2.7", platform)
    SnapshotRun.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        run, _ = request_run(platform, "full", actor=audit.Actor.system())
    assert (run.trigger, run.requested_by) == ("schedule", None)
    assert AuditEvent.objects.filter(action="snapshot.run").count() == 1
