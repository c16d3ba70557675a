"""Plugins (list, parameters, diff + confirmation, audited) and the external command."""

from __future__ import annotations

from django.urls import reverse

from platforms.models import AuditEvent
from tests.server.conftest import received


def test_plugins_are_listed_for_admins_only(admin_role_client, sandbox_platforms):
    from tests.factories import StaffUserFactory, grant

    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-plugins", args=[mt4.pk])
    response = admin_role_client.get(url)
    assert response.status_code == 200 and response.context["plugins"]
    admin_role_client.force_login(grant(StaffUserFactory(), mt4, role="support"))
    assert admin_role_client.get(url).status_code == 403


def test_parameter_edit_shows_a_diff_then_applies_and_audits(admin_role_client, sandbox_platforms,
                                                             clean_sandbox):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-plugin", args=[mt4.pk, 0])
    page = admin_role_client.get(url)
    values = page.context["values"]
    assert values, "the sandbox's first plugin has parameters"
    name, old = next(iter(values.items()))
    form = {f"param-{i}": v for i, v in enumerate(values.values())}
    form["param-0"] = old + "-changed"
    before = received(clean_sandbox, "CfgUpdatePlugin")
    review = admin_role_client.post(url, {**form, "review": "1"})
    changes = review.context["changes"]
    assert [(c.name, c.before, c.after) for c in changes] == [(name, old, old + "-changed")]
    assert received(clean_sandbox, "CfgUpdatePlugin") == before  # nothing sent before confirming
    applied = admin_role_client.post(url, {**form, "apply": "1"})
    assert 'id="plugin-applied"' in applied.content.decode()
    assert received(clean_sandbox, "CfgUpdatePlugin") == before + 1
    assert admin_role_client.get(url).context["values"][name] == old + "-changed"
    event = AuditEvent.objects.get(action="plugin.update")
    assert event.before[name] == old and event.after[name] == old + "-changed"
    # leave the sandbox as found
    admin_role_client.post(url, {**form, "param-0": old, "apply": "1"})


def test_unchanged_parameters_send_nothing(admin_role_client, sandbox_platforms, clean_sandbox):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-plugin", args=[mt4.pk, 0])
    values = admin_role_client.get(url).context["values"]
    before = received(clean_sandbox, "CfgUpdatePlugin")
    response = admin_role_client.post(
        url, {**{f"param-{i}": v for i, v in enumerate(values.values())}, "apply": "1"})
    assert "Nothing changed" in response.content.decode()
    assert received(clean_sandbox, "CfgUpdatePlugin") == before


def test_unknown_plugin_position_is_a_clear_error(admin_role_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    response = admin_role_client.get(reverse("dashboard:server-plugin", args=[mt4.pk, 999]))
    assert response.status_code == 200 and "999" in response.context["error"]


def test_external_command_round_trip_in_hex_and_base64(admin_role_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-command", args=[mt4.pk])
    reply = admin_role_client.post(url, {"encoding": "hex", "payload": "01 02 0a ff",
                                         "confirm": "on"})
    assert reply.context["reply"].hex == "ff 0a 02 01"  # the sandbox plugin reverses the bytes
    assert reply.context["reply"].base64 == "/woCAQ=="
    again = admin_role_client.post(url, {"encoding": "base64", "payload": "AQIK/w==",
                                         "confirm": "on"})
    assert again.context["reply"].data == b"\xff\x0a\x02\x01"
    events = AuditEvent.objects.filter(action="plugin.external_command", outcome="ok")
    assert events.count() == 2 and events.first().after["bytes"] == 4


def test_invalid_payloads_are_refused_and_nothing_is_sent(admin_role_client, sandbox_platforms,
                                                          clean_sandbox):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-command", args=[mt4.pk])
    before = received(clean_sandbox, "ExternalCommandBinary")
    for encoding, payload in (("hex", "0g"), ("hex", "123"), ("base64", "not base64!"),
                              ("base64", "AQI")):
        response = admin_role_client.post(url, {"encoding": encoding, "payload": payload,
                                           "confirm": "on"})
        assert f"not valid {encoding}; nothing was sent" in response.content.decode()
    unconfirmed = admin_role_client.post(url, {"encoding": "hex", "payload": "01"})
    assert unconfirmed.context["form"].errors["confirm"]
    assert received(clean_sandbox, "ExternalCommandBinary") == before
    assert not AuditEvent.objects.filter(action="plugin.external_command").exists()


def test_plugin_pages_say_when_the_sidecar_is_down(admin_role_client, sandbox_platforms,
                                                   sidecar_down):
    mt4, _ = sandbox_platforms
    for name, args in (("server-plugins", []), ("server-plugin", [0])):
        response = admin_role_client.get(reverse(f"dashboard:{name}", args=[mt4.pk, *args]))
        assert response.status_code == 200
        assert "x86 sidecar is unreachable" in response.content.decode()
    command = admin_role_client.post(reverse("dashboard:server-command", args=[mt4.pk]),
                                {"encoding": "hex", "payload": "01", "confirm": "on"})
    assert "x86 sidecar is unreachable" in command.content.decode()
    assert AuditEvent.objects.get(action="plugin.external_command").outcome == "error"
