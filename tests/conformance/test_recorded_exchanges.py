"""The judge itself: it accepts what the vendor document allows, rejects what it does not, and
passes every exchange a representative plain-httpx session had with the sandbox.
"""

from __future__ import annotations

import copy
import json
import time

import httpx
import pytest

from tests.conformance.openapi_judge import fetch_exchanges, validate_exchange, validate_recorded
from tests.sandbox_process import SandboxInfo

TP = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
AUTH = {"Authorization": "Bearer x.y.z"}
JSON = {"Content-Type": "application/json; charset=utf-8"}
USER = {
    "login": 1001,
    "group": "real\\usd",
    "name": "Ann",
    "registrationDate": "2024-01-01T00:00:00Z",
    "lastDate": "2024-06-01T10:00:00Z",
    "leverage": 100,
    "agentAccount": 0,
    "lastIP": 0,
    "balance": 1000.5,
    "credit": 0.0,
    "prevMonthBalance": 0.0,
    "prevBalance": 0.0,
    "prevMonthEquity": 0.0,
    "prevEquity": 0.0,
    "interestRate": 0.0,
    "taxes": 0.0,
    "enableFlags": 3,
    "sendReports": 1,
    "mqid": 0,
    "userColor": 0,
}
USERS_OK = {
    "data": [USER, dict(USER, login=1002)],
    "error": None,
    "meta": {"activityId": "00-abc-def-01", "paging": {"nextCursor": "MTAwMg==", "hasMore": True}},
}
USERS_PATH = f"/api/v2/MT4/{TP}/UsersRequest"


def judge(body, *, path=USERS_PATH, query="limit=2", headers=AUTH, status=200, rh=JSON, **kw):
    return validate_exchange("GET", path, query, headers, None, status, rh, json.dumps(body), **kw)


# --------------------------------------------------------------------------------------------
# Hand-made exchanges: the judge is not a rubber stamp
# --------------------------------------------------------------------------------------------


def test_judge_accepts_a_conforming_page() -> None:
    assert judge(USERS_OK) == []


def test_judge_rejects_user_without_login() -> None:
    body = copy.deepcopy(USERS_OK)
    del body["data"][1]["login"]
    problems = judge(body)
    assert any("data[1]" in p and "'login' is a required property" in p for p in problems), problems


def test_judge_rejects_string_where_number_required() -> None:
    body = copy.deepcopy(USERS_OK)
    body["data"][0]["balance"] = "1000.5"
    body["data"][1]["login"] = "1002"
    problems = judge(body)
    assert any("data[0].balance" in p and "not of type 'number'" in p for p in problems), problems
    assert any("data[1].login" in p and "not of type 'integer'" in p for p in problems), problems


def test_judge_rejects_missing_meta_and_error_keys() -> None:
    body = {"data": USERS_OK["data"]}
    problems = judge(body)
    assert any("no 'meta'" in p for p in problems), problems
    assert any("no 'error' key" in p for p in problems), problems


def test_judge_rejects_unknown_fields_enums_and_formats() -> None:
    body = copy.deepcopy(USERS_OK)
    body["data"][0]["password"] = "secret"  # additionalProperties: false
    body["data"][1]["registrationDate"] = "yesterday"
    problems = judge(body)
    assert any("'password' was unexpected" in p for p in problems), problems
    assert any("is not a 'date-time'" in p for p in problems), problems
    error = {"data": None, "error": {"code": "Oops"}, "meta": {"activityId": "a"}}
    assert any("'Oops' is not one of" in p for p in judge(error)), judge(error)


def test_judge_checks_paging_consistency() -> None:
    body = copy.deepcopy(USERS_OK)
    body["meta"]["paging"] = {"nextCursor": None, "hasMore": True}
    assert any("inconsistent" in p for p in judge(body))
    assert any("limit=1 but 2 items" in p for p in judge(USERS_OK, query="limit=1"))
    time_ok = {"data": "2024-01-01T00:00:00Z", "error": None, "meta": {"activityId": "a"}}
    with_paging = dict(time_ok, meta={"activityId": "a", "paging": {"hasMore": False}})
    assert judge(time_ok, path=f"/api/v2/MT4/{TP}/ServerTime", query="") == []
    assert any(
        "not cursor-paged" in p for p in judge(with_paging, path=f"/api/v2/MT4/{TP}/ServerTime")
    )


def test_judge_requires_validation_for_rejected_inputs() -> None:
    success = copy.deepcopy(USERS_OK)
    assert any("exceeds the maximum 5000" in p for p in judge(success, query="limit=6000"))
    validation = {
        "data": None,
        "error": {"code": "Validation", "message": "limit"},
        "meta": {"activityId": "a"},
    }
    assert judge(validation, query="limit=6000") == []
    zero = dict(AUTH, **{"X-Request-Timeout": "0"})
    assert any("X-Request-Timeout='0'" in p for p in judge(success, headers=zero))
    assert judge(validation, headers=zero) == []
    no_token = judge(success, headers={})
    assert any("expected 401" in p for p in no_token), no_token


def test_judge_error_envelope_rules() -> None:
    error = {
        "data": None,
        "error": {"code": "NotFound", "message": "no such login"},
        "meta": {"activityId": "a"},
    }
    path = f"/api/v2/MT4/{TP}/UserRecordGet/5"
    assert judge(error, path=path, query="") == []
    both = dict(error, data=USER)
    assert any("non-null 'data'" in p for p in judge(both, path=path, query=""))
    timeout = dict(error, error={"code": "Timeout"})
    assert any("X-Request-Outcome" in p for p in judge(timeout, path=path, query=""))
    rh = dict(JSON, **{"X-Request-Outcome": "timeout"})
    assert judge(timeout, path=path, query="", rh=rh) == []


def test_judge_status_codes_and_skips() -> None:
    assert judge("nope", status=401, rh={"Content-Type": "text/plain"}) == []
    assert judge("<html>bad gateway</html>", status=502, rh={"Content-Type": "text/html"}) == []
    assert any("HTTP 500" in p for p in judge({"detail": "boom"}, status=500))
    assert any("HTTP 404" in p for p in judge({}, status=404, port_role="main"))
    snapshot = f"/api/v2/MT4/{TP}/UsersSnapshot"
    assert judge({}, path=snapshot, query="", status=404, port_role="main") == []
    served = dict(USERS_OK, meta={"activityId": "a"})
    assert any(
        "sidecar operation served on the main port" in p
        for p in judge(served, path=snapshot, query="", port_role="main")
    )


def test_judge_non_spec_endpoints_follow_the_reference() -> None:
    assert (
        judge([{"id": TP, "type": "MT4", "name": "x"}], path="/api/TradePlatforms", query="") == []
    )
    enveloped = {"data": [{"id": TP, "type": "MT4"}], "error": None}
    assert any(
        "plain JSON array" in p for p in judge(enveloped, path="/api/TradePlatforms", query="")
    )
    assert any(
        "type must be" in p for p in judge([{"id": TP, "type": "MT9"}], path="/api/TradePlatforms")
    )
    form = "grant_type=client_credentials&client_id=a&client_secret=b"
    token = {"access_token": "t", "token_type": "Bearer"}
    problems = validate_exchange(
        "POST", "/connect/token", None, {}, form, 200, JSON, json.dumps(token)
    )
    assert any("expires_in" in p for p in problems), problems
    good = dict(token, expires_in=3600)
    assert (
        validate_exchange("POST", "/connect/token", None, {}, form, 200, JSON, json.dumps(good))
        == []
    )
    disco = validate_exchange(
        "GET", "/.well-known/openid-configuration", None, {}, None, 200, JSON, "{}"
    )
    assert any("token_endpoint" in p for p in disco), disco


def _page(index: int, **user_changes) -> dict:
    """A valid UsersRequest page, different in its numbers from every other ``index``."""
    body = copy.deepcopy(USERS_OK)
    body["meta"]["activityId"] = f"00-{index:032x}-01"
    body["data"][0]["balance"] = 1000.0 + index
    body["data"][1].update(user_changes)
    return body


def test_a_violation_hidden_among_many_same_shaped_answers_is_reported() -> None:
    """The judge keeps verdicts to go fast; none may stand in for an answer it did not see."""
    for index in range(300):
        assert judge(_page(index)) == [], index
    wrong_type = judge(_page(300, balance="1300.0"))
    assert any("data[1].balance" in p and "not of type 'number'" in p for p in wrong_type)
    bad_date = judge(_page(301, lastDate="2024-13-45T99:00:00Z"))
    assert any("data[1].lastDate" in p and "date-time" in p for p in bad_date), bad_date
    unknown = judge(_page(302, password="x"))
    assert any("'password' was unexpected" in p for p in unknown), unknown
    no_activity = _page(303)
    no_activity["meta"]["activityId"] = ""
    assert any("activityId missing or empty" in p for p in judge(no_activity))
    # the same request again, with the one header the document reads made invalid
    zero = dict(AUTH, **{"X-Request-Timeout": "0"})
    assert any("X-Request-Timeout='0'" in p for p in judge(_page(5), headers=zero))
    assert any("expected 401" in p for p in judge(_page(6), headers={}))
    assert judge(_page(304)) == []  # and a valid answer after them is still clean


# --------------------------------------------------------------------------------------------
# A representative plain-httpx session against the sandbox, then judged from the recording
# --------------------------------------------------------------------------------------------


def _next_seq(control_url: str) -> int:
    return httpx.get(f"{control_url}/exchanges", params={"since": 0}, timeout=30).json()["next"]


def test_recorded_session_conforms(csb: SandboxInfo) -> None:
    since = _next_seq(csb.control_url)
    calls = 0
    with httpx.Client(timeout=60) as http:
        discovery = http.get(f"{csb.authority}/.well-known/openid-configuration").json()
        token = http.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "client_credentials",
                "client_id": csb.client_id,
                "client_secret": csb.client_secret,
            },
        ).json()["access_token"]
        bad_secret = http.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "client_credentials",
                "client_id": csb.client_id,
                "client_secret": "wrong",
            },
        )
        assert bad_secret.status_code in (400, 401)
        calls += 3
        auth = {"Authorization": f"Bearer {token}"}
        mt4 = f"{csb.base_url}/api/v2/MT4/{csb.mt4_id}"
        mt5 = f"{csb.base_url}/api/v2/MT5/{csb.mt5_id}"
        side = f"{csb.sidecar_url}/api/v2/MT4/{csb.mt4_id}"

        def get(url: str, **kw) -> httpx.Response:
            nonlocal calls
            calls += 1
            return http.get(url, headers={**auth, **kw.pop("headers", {})}, **kw)

        def envelope(url: str, **kw) -> dict:
            answer = get(url, **kw)
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:200])
            return answer.json()

        assert get(f"{csb.base_url}/api/TradePlatforms").status_code == 200
        assert envelope(f"{mt4}/ServerTime")["error"] is None
        assert envelope(f"{mt5}/ServerTime")["error"] is None
        first = envelope(f"{mt4}/UsersRequest", params={"limit": 50})
        cursor = first["meta"]["paging"]["nextCursor"]
        second = envelope(f"{mt4}/UsersRequest", params={"limit": 50, "cursor": cursor})
        assert second["data"][0]["login"] > first["data"][-1]["login"]
        login = first["data"][0]["login"]
        assert envelope(f"{mt4}/UserRecordGet/{login}")["data"]["login"] == login
        assert envelope(f"{mt4}/MarginLevelGet/{login}")["data"]["login"] == login
        assert envelope(f"{mt4}/TradesRequest", params={"limit": 20})["error"] is None
        assert envelope(f"{mt4}/GroupsRequest")["error"] is None
        assert envelope(f"{mt4}/ManagerCommon")["error"] is None
        assert envelope(f"{mt5}/PositionByGroup/*", params={"limit": 10})["error"] is None
        assert envelope(f"{side}/UsersSnapshot", params={"limit": 5})["error"] is None
        assert envelope(f"{side}/TradesSnapshot", params={"limit": 5})["error"] is None

        # error envelopes
        assert envelope(f"{mt4}/UserRecordGet/2000000000")["error"]["code"] == "NotFound"
        assert envelope(f"{mt5}/UserGet/9000000000")["error"]["code"] == "NotFound"
        assert (
            envelope(f"{mt4}/UsersRequest", params={"limit": 6000})["error"]["code"] == "Validation"
        )
        malformed = envelope(
            f"{mt4}/UsersRequest", params={"limit": 10, "cursor": "%%not-a-cursor%%"}
        )
        assert malformed["error"]["code"] == "Validation", malformed
        zero = envelope(f"{mt4}/ServerTime", headers={"X-Request-Timeout": "0"})
        assert zero["error"]["code"] == "Validation", zero
        too_long = envelope(f"{mt4}/ServerTime", headers={"X-Request-Timeout": "301"})
        assert too_long["error"]["code"] == "Validation", too_long

        # routing and authentication
        assert get(f"{mt4}/UsersSnapshot").status_code == 404
        assert get(f"{side}/ServerTime").status_code == 404
        calls += 1
        assert http.get(f"{mt4}/ServerTime").status_code == 401

    exchanges, _ = fetch_exchanges(csb.control_url, since)
    assert len(exchanges) >= calls, f"recorded {len(exchanges)} of {calls} exchanges"
    violations, next_seq = validate_recorded(csb.control_url, since)
    assert next_seq > since
    assert not violations, "\n".join(violations)


def test_whole_recording_is_judged_quickly(csb: SandboxInfo) -> None:
    """Everything this process sent so far (SDK, schemathesis, httpx) conforms, in one pass."""
    started = time.monotonic()
    violations, _ = validate_recorded(csb.control_url, 0)
    elapsed = time.monotonic() - started
    assert not violations, f"{len(violations)} violations:\n" + "\n".join(violations[:200])
    assert elapsed < 120, f"judging the recording took {elapsed:.1f}s"


@pytest.mark.parametrize("since", [0])
def test_validate_recorded_returns_a_resumable_sequence(csb: SandboxInfo, since: int) -> None:
    _, first = validate_recorded(csb.control_url, since)
    violations, second = validate_recorded(csb.control_url, first)
    assert second >= first
    assert violations == []
