"""Either upstream's transport failures, caught by one base class and raised in each client's
own terms: the manager client and the coverage bridge client share one transport core."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from platforms import client as manager
from platforms.coverage import client as bridge
from platforms.transport import CircuitOpen, MaybeSent, NothingSent, RetryPolicy, TransportFailure

ONCE = RetryPolicy(attempts=1)
REFUSED = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


def _clients(base_url: str, breaker: manager.PlatformBreaker | None = None):
    """A manager client and a bridge client whose every request goes to ``base_url``."""
    config = manager.PlatformConfig(
        platform_id=str(uuid.uuid4()), kind="MT4", api_base_url=base_url, authority=base_url,
        client_id="dashboard", client_secret="not-a-secret",
    )
    bridge_config = bridge.BridgeConfig(
        base_url=f"{base_url}/mt4/client", api_key="not-a-key", account_id="acct-1",
        server="LP-Demo", login=1, password="not-a-password",
    )
    return (
        manager.ManagerClient(config, breaker=breaker or _fresh(), retry=ONCE),
        bridge.BridgeClient(bridge_config, breaker=breaker or _fresh(), retry=ONCE),
    )


def _fresh() -> manager.PlatformBreaker:
    return manager.PlatformBreaker(str(uuid.uuid4()))


def _calls(base_url: str, breaker=None) -> Iterator[tuple[Callable[[], object], type, type]]:
    """Each client's read, with its own error root and its own module of errors."""
    manager_client, bridge_client = _clients(base_url, breaker)
    with manager_client, bridge_client:
        yield manager_client.mt4.server_time, manager.ManagerApiError, manager.errors
        yield bridge_client.account, bridge.BridgeApiError, bridge.errors


@pytest.fixture
def hang_up_url() -> Iterator[str]:
    """A loopback server that reads each request and closes the connection without an answer."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def test_a_refused_connection_is_nothing_sent_for_either_upstream() -> None:
    for call, root, errors in _calls(REFUSED):
        with pytest.raises(NothingSent) as caught:
            call()
        assert isinstance(caught.value, errors.ConnectionNotMade)
        assert isinstance(caught.value, root) and isinstance(caught.value, TransportFailure)
        assert "could not connect to 127.0.0.1" in str(caught.value)


def test_a_connection_lost_after_sending_is_maybe_sent_for_either_upstream(hang_up_url) -> None:
    for call, root, errors in _calls(hang_up_url):
        with pytest.raises(MaybeSent) as caught:
            call()
        assert isinstance(caught.value, errors.TransportError) and isinstance(caught.value, root)
        assert not isinstance(caught.value, NothingSent)
        assert "failed after sending: RemoteProtocolError" in str(caught.value)


def test_an_open_circuit_refuses_in_the_calling_clients_own_terms() -> None:
    shared = manager.PlatformBreaker(str(uuid.uuid4()))
    shared.trip()
    for call, root, errors in _calls(REFUSED, shared):
        with pytest.raises(CircuitOpen) as caught:
            call()
        assert type(caught.value) is errors.CircuitOpen  # raised as such, not translated
        assert isinstance(caught.value, root) and isinstance(caught.value, TransportFailure)
        assert caught.value.target == shared.platform_id and caught.value.retry_in > 0
    assert not issubclass(bridge.CircuitOpen, manager.ManagerApiError)
