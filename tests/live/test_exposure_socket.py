"""The socket's "exposure changed" frames against the real sandbox, on both channel layers:
only users who may view a platform's net exposure (risk, dealer or admin role *and* the
platform in their grant) join its exposure group, a trade is announced only to users whose group
masks include the trading account, and a role or grant removed mid-session stops the frames at
the next re-check. Every test also shows that what may arrive does arrive.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from platforms.access.models import PlatformAccess
from tests.factories import StaffUserFactory, grant
from tests.live.sockets import frames, frames_until, next_message, open_socket
from tests.live.test_socket_scope import EXCLUDED, MASKS, RunningBridge
from tests.sandbox_process import forget_connections

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def world(hubs, channel_layer_backend, settings):
    from platforms.services import register_sandbox_platforms

    settings.REALTIME_BRIDGE = "external"  # the test runs its own bridge
    settings.REALTIME_SCOPE_RECHECK_SECONDS = 0.3
    forget_connections(hubs)
    mt4, mt5 = register_sandbox_platforms(hubs)
    staff = StaffUserFactory
    yield {
        "mt4": mt4,
        "risk": grant(staff(username="x-risk"), mt4, role="risk"),
        "dealer": grant(staff(username="x-dealer"), mt4, role="dealer"),
        "masked": grant(staff(username="x-masked"), mt4, group_masks=MASKS, role="risk"),
        "finance": grant(staff(username="x-finance"), mt4, role="finance"),
        "elsewhere": grant(staff(username="x-mt5"), mt5, role="risk"),
    }
    forget_connections(hubs)


def _exposed(frames_: list[dict], pk: int) -> bool:
    return any(pk in f.get("exposure", ()) for f in frames_ if f.get("t") == "u")


async def _watching(user, pk: int):
    socket, connected, _ = await open_socket(user)
    assert connected
    await socket.send_json_to({"type": "watch", "exposure": [pk]})
    return socket


async def test_only_users_who_may_view_exposure_are_told_it_changed(world):
    mt4 = world["mt4"]
    pk = mt4.pk
    async with RunningBridge(mt4) as live:
        hidden = live.account(lambda group: group == EXCLUDED)
        shown = live.account(lambda group: group.startswith("real\\") and group != EXCLUDED)
        sockets = {name: await _watching(world[name], pk)
                   for name in ("risk", "dealer", "masked", "finance", "elsewhere")}
        first = {name: await frames(socket, 0.4) for name, socket in sockets.items()}
        # refused on subscribe: no exposure role, or the platform outside the grant
        for name in ("finance", "elsewhere"):
            denied = [f for f in first[name] if f["t"] == "denied"]
            assert denied and pk in denied[0].get("exposure", []), (name, first[name])
        for name in ("risk", "dealer", "masked"):
            assert not any(f["t"] == "denied" for f in first[name]), (name, first[name])

        await live.trade(hidden)  # an account outside the masked user's masks
        seen = {name: await frames_until(socket, lambda f: _exposed(f, pk), 3)
                for name, socket in sockets.items() if name in ("risk", "dealer")}
        assert all(_exposed(f, pk) for f in seen.values()), seen  # what may arrive, arrives
        quiet = {name: await frames(sockets[name], 0.6)
                 for name in ("masked", "finance", "elsewhere")}
        assert not any(_exposed(f, pk) for f in quiet.values()), quiet

        await live.trade(shown)  # inside the masks: now the masked user is told too
        masked = await frames_until(sockets["masked"], lambda f: _exposed(f, pk), 3)
        assert _exposed(masked, pk), masked
        for name in ("finance", "elsewhere"):
            assert not _exposed(await frames(sockets[name], 0.3), pk), name
        for socket in sockets.values():
            await socket.disconnect()


async def test_a_role_or_grant_removed_mid_session_stops_the_frames(world):
    mt4 = world["mt4"]
    pk = mt4.pk
    risk, dealer, masked = world["risk"], world["dealer"], world["masked"]
    async with RunningBridge(mt4) as live:
        shown = live.account(lambda group: group.startswith("real\\") and group != EXCLUDED)
        control, demoted, revoked = [await _watching(u, pk) for u in (dealer, risk, masked)]
        for socket in (control, demoted, revoked):
            await frames(socket, 0.3)
        await live.trade(shown)
        for socket in (control, demoted, revoked):  # all three are told, to begin with
            assert _exposed(await frames_until(socket, lambda f: _exposed(f, pk), 3), pk)

        await sync_to_async(risk.groups.clear)()  # no exposure role any more
        await sync_to_async(PlatformAccess.objects.filter(user=masked).delete)()  # no grant
        told = await frames_until(demoted, lambda f: any(x["t"] == "denied" for x in f), 3)
        denial = next(f for f in told if f["t"] == "denied")
        assert denial.get("exposure") == [pk] and denial.get("reason") == "access revoked"
        closed = None
        while closed is None:  # frames queued before the close may come first
            message = await next_message(revoked, 3)
            assert message is not None, "the revoked socket was not closed"
            if message["type"] == "websocket.close":
                closed = message
        assert closed == {"type": "websocket.close", "code": 4403, "reason": "access revoked"}

        await live.trade(shown)
        assert _exposed(await frames_until(control, lambda f: _exposed(f, pk), 3), pk)
        assert not _exposed(await frames(demoted, 0.8), pk)
        await control.disconnect()
        await demoted.disconnect()
