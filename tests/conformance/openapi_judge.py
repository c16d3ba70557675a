"""Judge recorded HTTP exchanges against the vendor's OpenAPI document (and the reference prose).

The vendor document (``cplugin-webapi-v2.openapi.json``, OpenAPI 3.0.1, 888 KB) is parsed once per
process and cached at module level. Every ``/api/v2/...`` exchange is checked with openapi-core:

* the **request** against the operation's parameters, security and body. A request the document
  rejects (``X-Request-Timeout: 0``, a non-GUID platform, a missing bearer token) is the client's
  choice, not a sandbox fault; it only becomes a violation when the sandbox *accepted* it (answered
  a success envelope, or anything but 401 for a missing token);
* the **response** against the declared status, content type and body schema.

Two readings are applied to the document, both documented in ``docs/conformance.md``:

1. *Nullable wrappers.* The document marks nullable references as ``{"allOf": [{"$ref": X}],
   "nullable": true}`` (Swashbuckle). A strict OAS 3.0.3 reading (openapi-core's) rejects ``null``
   there, i.e. it would reject ``"error": null`` on every success envelope, which the document's
   own descriptions require. Such wrappers are rewritten to ``anyOf: [X, null]`` -- the reading
   schemathesis and every vendor SDK apply.
2. *Completeness.* The document declares no ``required`` lists (except ``MT5Deal``). The vendor
   server serialises with "null fields are omitted" (reference section 2.1), so a property the
   document does **not** mark nullable is always on the wire. For response validation every such
   property is required (``[completeness]`` in messages).

On top of the schema, the envelope rules of reference section 2.1/2.3/2.6 are enforced: ``error``
and ``meta`` always serialised, ``meta.activityId`` non-empty, ``data`` non-null on success and
null on error, ``meta.paging`` only (and consistently) on cursor-paged operations, ``limit`` above
5000 and ``X-Request-Timeout`` outside 1-300 answered with ``Validation``, HTTP 200 for every
handled outcome, and the x86 sidecar split (its 13 operations are 404 on the main port and the
main operations are 404 on the sidecar port).

Outside the document: ``/api/TradePlatforms`` (plain array of ``{id, type, ...}``), the OAuth token
endpoint (``access_token``, ``token_type``, ``expires_in``) and OIDC discovery (``token_endpoint``)
are checked against the reference prose. HTTP 401 answers and HTML 502/503/504 proxy pages are
deliberately injected faults and are skipped.

Usage from a session fixture::

    from tests.conformance.openapi_judge import validate_recorded
    violations, next_seq = validate_recorded(sandbox.control_url)
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from jsonschema.validators import extend as extend_validator
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.validators import V30ResponseValidator
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from openapi_schema_validator import OAS30ReadValidator

# The vendor's own document, kept in the repository as test data (a clone is self-contained).
DEFAULT_SPEC_PATH = Path(__file__).resolve().parent / "data" / "cplugin-webapi-v2.openapi.json"
SPEC_PATH = Path(os.environ.get("CPLUGIN_OPENAPI_SPEC", str(DEFAULT_SPEC_PATH)))

# The document's first server; every recorded URL is re-based onto it so matching is by path only
# (the main port and the x86 sidecar port map onto the same path templates).
_SPEC_HOST = "https://pre.mywebapi.com"

MAX_PAGE_LIMIT = 5000
REQUEST_TIMEOUT_RANGE = (1.0, 300.0)
OUTCOME_VALUES = {"timeout", "unknown", "not-started", "in-progress"}
_PROXY_FAULT_STATUSES = {502, 503, 504}
_NOT_REQUIRED = {"JsonNode", "JsonNodeOptions"}  # .NET plumbing types documented by accident
_CACHE_LIMIT = 50_000
_NORMALISED_ID = "<activity-id>"


# --------------------------------------------------------------------------------------------
# Spec loading (once per process)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def spec_dict() -> dict[str, Any]:
    """The vendor document exactly as published (parsed once)."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return json.load(fh)


def _is_nullable(schema: Mapping[str, Any]) -> bool:
    return bool(schema.get("nullable"))


def _rewrite_nullable_wrappers(node: Any) -> Any:
    """``{allOf|oneOf|anyOf|$ref, nullable: true}`` without ``type`` -> ``anyOf: [X, null]``."""
    if isinstance(node, list):
        return [_rewrite_nullable_wrappers(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _rewrite_nullable_wrappers(value) for key, value in node.items()}
    if node.get("nullable") is True and "type" not in node:
        inner = {
            key: value for key, value in node.items() if key not in ("nullable", "description")
        }
        rewritten: dict[str, Any] = {
            "anyOf": [inner, {"type": "object", "nullable": True, "enum": [None]}]
        }
        if "description" in node:
            rewritten["description"] = node["description"]
        return rewritten
    return node


def _with_required_non_nullable(spec: dict[str, Any]) -> dict[str, Any]:
    """Every property not marked nullable is required (response reading, see module doc)."""
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        if name.endswith("ApiResponse") or name in _NOT_REQUIRED:
            continue  # envelopes are checked by the explicit envelope rules
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            continue
        required = set(schema.get("required", []))
        required.update(
            p for p, s in properties.items() if isinstance(s, dict) and not _is_nullable(s)
        )
        if required:
            schema["required"] = sorted(required)
    return spec


class _DocumentLookupsOnce:
    """openapi-core's validators, with what depends on the document alone computed once.

    On every call openapi-core matched the URL against all 300-odd path templates, found the
    declared response for the status, and built a fresh jsonschema validator (deep-copying its
    format checker, resolving ``$ref`` chains) for each parameter and body schema: nine tenths of
    the judging time, none of it depending on the exchange. Here each is kept per key (the
    concrete URL, the operation and status, the schema's place in the document); what is checked
    against the exchange -- deserialising, casting, schema validation of the values, security --
    still runs on every call, unchanged.
    """

    _path_cache_limit = 20_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._found_paths: dict[tuple[str, str, str], Any] = {}
        self._schema_validators: dict[Any, Any] = {}
        self._operation_responses: dict[tuple[Any, int], Any] = {}

    def _find_path(self, request: Any) -> Any:
        key = (
            request.method,
            request.host_url,
            getattr(request, "path_pattern", None) or request.path,
        )
        found = self._found_paths.get(key)
        if found is None:
            found = super()._find_path(request)  # type: ignore[misc]  # raises when unknown
            if len(self._found_paths) > self._path_cache_limit:
                self._found_paths.clear()
            self._found_paths[key] = found
        return found

    def _validate_schema(self, schema: Any, value: Any) -> None:
        validator = self._schema_validators.get(schema)
        if validator is None:
            validator = self.schema_validators_factory.create(  # type: ignore[attr-defined]
                self.spec,  # type: ignore[attr-defined]
                schema,
                format_validators=self.format_validators,  # type: ignore[attr-defined]
                extra_format_validators=self.extra_format_validators,  # type: ignore[attr-defined]
                forbid_unspecified_additional_properties=(
                    self.forbid_unspecified_additional_properties  # type: ignore[attr-defined]
                ),
                enforce_properties_required=self.enforce_properties_required,  # type: ignore[attr-defined]
            )
            self._schema_validators[schema] = validator
        validator.validate(value)


class _RequestValidator(_DocumentLookupsOnce, V30RequestValidator):
    pass


# (validator class, items schema, exact item JSON) of array items found valid. A list page
# repeats the same accounts and trades across pages and calls (40,000 items, 2,300 distinct in a
# run); each distinct item is validated once per items schema. Only passes are kept: an item that
# fails is validated again every time, so every failure is reported with its own index.
_VALID_ITEMS: set[tuple[type, int, str]] = set()
_ITEMS_SCHEMAS: dict[int, Any] = {}  # keeps each keyed schema alive, so its id is never reused


def _items_validated_once(
    validator: Any, items: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterable[Any]:
    """openapi-schema-validator's ``items`` keyword, skipping items already found valid.

    Validating an item depends only on the item, its schema (one document, one resolver, one
    format checker) and the validator class -- the parts of the key, compared as exact JSON
    (``1``, ``1.0`` and ``true`` stay distinct).
    """
    if not validator.is_type(instance, "array"):
        return
    _ITEMS_SCHEMAS.setdefault(id(items), items)
    for index, item in enumerate(instance):
        key = (type(validator), id(items), json.dumps(item, sort_keys=True))
        if key in _VALID_ITEMS:
            continue
        errors = list(validator.descend(item, items, path=index))
        if errors:
            yield from errors
        elif len(_VALID_ITEMS) < _CACHE_LIMIT:
            _VALID_ITEMS.add(key)


_ResponseSchemaValidator = extend_validator(
    OAS30ReadValidator, validators={"items": _items_validated_once}
)


class _ResponseValidator(_DocumentLookupsOnce, V30ResponseValidator):
    schema_validators_factory = SchemaValidatorsFactory(
        _ResponseSchemaValidator, format_checker=OAS30ReadValidator.FORMAT_CHECKER
    )

    def _find_operation_response(self, status_code: int, operation: Any) -> Any:
        key = (operation, status_code)
        found = self._operation_responses.get(key)
        if found is None:
            found = super()._find_operation_response(status_code, operation)
            self._operation_responses[key] = found
        return found


def _build(spec: dict[str, Any]) -> OpenAPI:
    # The document is the vendor's and known-good; skip the (slow) spec validation pass.
    config = Config(
        spec_validator_cls=None,
        request_validator_cls=_RequestValidator,
        response_validator_cls=_ResponseValidator,
    )
    return OpenAPI.from_dict(spec, config=config)


@functools.lru_cache(maxsize=1)
def request_openapi() -> OpenAPI:
    """openapi-core object used to validate requests (document as published + nullable reading)."""
    return _build(_rewrite_nullable_wrappers(copy.deepcopy(spec_dict())))


@functools.lru_cache(maxsize=1)
def response_openapi() -> OpenAPI:
    """openapi-core object used to validate responses (+ completeness reading)."""
    spec = _with_required_non_nullable(copy.deepcopy(spec_dict()))
    return _build(_rewrite_nullable_wrappers(spec))


@functools.lru_cache(maxsize=1)
def _operations() -> dict[str, Any]:
    """Path templates compiled to regexes, with per-operation facts the envelope rules need."""
    table = []
    for template, ops in spec_dict()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in ops.items():
            params = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            table.append(
                {
                    "template": template,
                    "regex": pattern,
                    "method": method.upper(),
                    "paged": "cursor" in params,
                    "limit": "limit" in params,
                    "sidecar": any("Sidecar" in tag for tag in op.get("tags", [])),
                    "literal_len": len(re.sub(r"\{[^}]+\}", "", template)),
                }
            )
    # Prefer literal matches over templated ones (``TradesGet`` vs ``TradesGet/{ticket}``).
    table.sort(key=lambda row: -row["literal_len"])
    return {"rows": table}


def find_operation(method: str, path: str) -> tuple[dict[str, Any] | None, bool]:
    """(operation row, path_known) for a concrete path; ``path_known`` even if the method isn't."""
    path_known = False
    for row in _operations()["rows"]:
        if row["regex"].match(path):
            path_known = True
            if row["method"] == method.upper():
                return row, True
    return None, path_known


@functools.lru_cache(maxsize=1)
def sidecar_templates() -> frozenset[str]:
    return frozenset(row["template"] for row in _operations()["rows"] if row["sidecar"])


# --------------------------------------------------------------------------------------------
# Input normalisation: the recorder may give strings, bytes, dicts or lists of pairs
# --------------------------------------------------------------------------------------------


def _pairs(value: Any) -> list[tuple[str, str]]:
    if value is None or value == "":
        return []
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return parse_qsl(value.lstrip("?"), keep_blank_values=True)
    if isinstance(value, Mapping):
        out = []
        for key, item in value.items():
            if isinstance(item, list | tuple):
                out.extend((str(key), _scalar(v)) for v in item)
            else:
                out.append((str(key), _scalar(item)))
        return out
    out = []
    for item in value:
        if isinstance(item, Mapping):
            out.append((str(item.get("name")), _scalar(item.get("value"))))
        else:
            key, val = item
            out.append((str(key), _scalar(val)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _headers(value: Any) -> dict[str, str]:
    """Case-insensitive view as a lower-cased dict (repeated headers joined with ', ')."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):  # raw "Name: value" lines
        value = [
            tuple(part.strip() for part in line.split(":", 1))
            for line in value.splitlines()
            if ":" in line
        ]
    merged: dict[str, str] = {}
    for key, val in _pairs(value):
        low = key.lower()
        merged[low] = f"{merged[low]}, {val}" if low in merged else val
    return merged


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _json_or_none(raw: bytes) -> tuple[bool, Any]:
    if not raw:
        return False, None
    try:
        return True, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _split_url(url_or_path: str, query: Any) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url_or_path)
    path = unquote(parts.path or "/")  # ASGI records decoded paths; clients send encoded ones
    pairs = _pairs(parts.query) if parts.query else []
    pairs.extend(_pairs(query))
    return path, pairs


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# --------------------------------------------------------------------------------------------
# openapi-core error formatting
# --------------------------------------------------------------------------------------------


def _schema_errors(exc: BaseException) -> list[Any]:
    seen: list[Any] = []
    cursor: BaseException | None = exc
    while cursor is not None:
        errors = getattr(cursor, "schema_errors", None)
        if errors:
            seen.extend(errors)
            break
        cursor = cursor.__cause__ or cursor.__context__
    return seen


def _param_name(exc: BaseException) -> str | None:
    """``header X-Request-Timeout`` / ``path group`` for a parameter error, else None."""
    name, location = getattr(exc, "name", None), getattr(exc, "location", None)
    return f"{location} parameter {name!r}" if name and location else None


def _caused_by(exc: BaseException, name: str) -> bool:
    cursor: BaseException | None = exc
    while cursor is not None:
        if type(cursor).__name__ == name:
            return True
        cursor = cursor.__cause__ or cursor.__context__
    return False


def _leaf_errors(error: Any) -> list[Any]:
    """Descend into anyOf/oneOf contexts, dropping the synthetic ``null`` branch."""
    context = [
        sub
        for sub in (getattr(error, "context", None) or [])
        if sub.validator != "enum" or sub.validator_value != [None]
    ]
    context = [
        sub for sub in context if sub.message != "None for not nullable" or sub.instance is None
    ]
    if not context:
        return [error]
    leaves: list[Any] = []
    for sub in context:
        leaves.extend(_leaf_errors(sub))
    return leaves


def _where(error: Any, root: str = "body") -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{root}{path}" if path else root


def _describe(exc: BaseException, what: str) -> list[str]:
    errors = _schema_errors(exc)
    if not errors:
        cause = exc.__cause__ or exc.__context__
        detail = f"{exc!r}" + (f" <- {cause!r}" if cause is not None else "")
        return [f"{what}: {detail}"]
    out: list[str] = []
    for error in errors:
        for leaf in _leaf_errors(error):
            message = leaf.message
            if leaf.validator == "required":
                message = (
                    f"[completeness] {message} (not nullable in the document, so always serialised)"
                )
            if len(message) > 300:
                message = message[:300] + "..."
            root = "body" if what == "response" or not _param_name(exc) else _param_name(exc)
            out.append(f"{what}: {_where(leaf, root)}: {message}")
    return sorted(set(out))


# --------------------------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------------------------

_CACHE: dict[str, tuple[str, ...]] = {}


def _normalised_body_key(raw: bytes) -> bytes:
    """Response body with a well-formed ``meta.activityId`` masked (it differs on every call)."""
    ok, data = _json_or_none(raw)
    if not ok or not isinstance(data, dict):
        return raw
    meta = data.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("activityId"), str) and meta["activityId"]:
        data = dict(data, meta=dict(meta, activityId=_NORMALISED_ID))
        return json.dumps(data, sort_keys=True).encode()
    return raw


def validate_exchange(
    method: str,
    url_or_path: str,
    query: Any = None,
    request_headers: Any = None,
    request_body: Any = None,
    status: int = 200,
    response_headers: Any = None,
    response_body: Any = None,
    *,
    port_role: str | None = None,
) -> list[str]:
    """Human-readable violations for one exchange (empty list: conforms).

    ``query`` / headers may be a raw query string, a mapping (values may be lists) or a list of
    pairs; bodies may be ``str``, ``bytes`` or already-decoded JSON. ``port_role`` is ``"main"``,
    ``"sidecar"`` or ``None`` (unknown); it decides whether a 404 is the documented port split.
    """
    path, pairs = _split_url(url_or_path, query)
    req_headers = _headers(request_headers)
    resp_headers = _headers(response_headers)
    req_raw = _body_bytes(request_body)
    resp_raw = _body_bytes(response_body)
    key = hashlib.sha256(
        json.dumps(
            [
                method.upper(),
                path,
                sorted(pairs),
                sorted(
                    (k, v)
                    for k, v in req_headers.items()
                    if k in ("authorization", "x-request-timeout", "content-type")
                ),
                req_raw.decode("utf-8", "replace"),
                int(status),
                sorted(
                    (k, v)
                    for k, v in resp_headers.items()
                    if k in ("content-type", "x-request-outcome", "x-request-timeout-applied")
                ),
                _normalised_body_key(resp_raw).decode("utf-8", "replace"),
                port_role,
            ]
        ).encode()
    ).hexdigest()
    cached = _CACHE.get(key)
    if cached is None:
        cached = tuple(
            _judge(
                method.upper(),
                path,
                pairs,
                req_headers,
                req_raw,
                int(status),
                resp_headers,
                resp_raw,
                port_role,
            )
        )
        if len(_CACHE) > _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = cached
    label = f"{method.upper()} {path}" + (
        "?" + "&".join(f"{k}={v}" for k, v in pairs) if pairs else ""
    )
    return [f"{label} -> {status}: {message}" for message in cached]


def _judge(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    req_raw: bytes,
    status: int,
    resp_headers: dict[str, str],
    resp_raw: bytes,
    port_role: str | None,
) -> list[str]:
    content_type = resp_headers.get("content-type", "")
    if status == 401:
        return []  # authentication answer (or injected fault): not in the document
    if status in _PROXY_FAULT_STATUSES and _media_type(content_type) == "text/html":
        return []  # HTML proxy page (injected fault)
    if path.startswith("/api/v2/"):
        return _judge_v2(
            method, path, pairs, req_headers, req_raw, status, resp_headers, resp_raw, port_role
        )
    if re.fullmatch(r"/api/TradePlatforms/?", path, flags=re.IGNORECASE):
        return _judge_trade_platforms(method, status, content_type, resp_raw)
    if path.endswith("/.well-known/openid-configuration"):
        return _judge_discovery(status, content_type, resp_raw)
    if path.endswith("/connect/token"):
        return _judge_token(method, pairs, req_headers, req_raw, status, content_type, resp_raw)
    return []  # not covered by the document nor by the reference prose


# ---- /api/v2 ---------------------------------------------------------------------------------


def _judge_v2(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    req_raw: bytes,
    status: int,
    resp_headers: dict[str, str],
    resp_raw: bytes,
    port_role: str | None,
) -> list[str]:
    row, path_known = find_operation(method, path)
    if row is None:
        if status in (404, 405):
            return []
        why = "path" if not path_known else f"method {method} for this path"
        return [f"the document has no such operation ({why}) but the sandbox answered {status}"]
    if status == 404:
        if row["sidecar"] and port_role != "sidecar":
            return []  # sidecar operation asked on the main port: documented split
        if not row["sidecar"] and port_role == "sidecar":
            return []  # main operation asked on the sidecar port: documented split
        return [
            f"{row['template']} answered HTTP 404; every handled outcome is HTTP 200 with an "
            "envelope (reference 2.1)"
        ]

    violations: list[str] = []
    if row["sidecar"] and port_role == "main":
        violations.append("x86 sidecar operation served on the main port (must be 404 there)")
    if not row["sidecar"] and port_role == "sidecar":
        violations.append("main-service operation served on the sidecar port (must be 404 there)")

    media = _media_type(resp_headers.get("content-type"))
    verdict = _request_verdict(method, path, pairs, req_headers, req_raw)
    if isinstance(verdict, str):  # pragma: no cover - guarded by find_operation
        return [verdict]
    request_problems, security_problem = verdict

    if status != 200:
        return [
            *violations,
            f"HTTP {status} with content type {media or '-'}; every handled "
            "outcome is HTTP 200 with an envelope, only 401 and HTML 502/503/504 are allowed "
            "otherwise (reference 2.1)",
        ]
    if security_problem:
        violations.append("request without a valid bearer token was answered 200 (expected 401)")

    ok, body = _json_or_none(resp_raw)
    if media != "application/json":
        violations.append(f"content type {media!r}; the document declares application/json")
    if not ok or not isinstance(body, dict):
        violations.append(f"body is not a JSON object envelope: {resp_raw[:120]!r}")
        return violations

    error = body.get("error")
    is_error = error is not None
    violations.extend(_envelope_rules(row, body, pairs, req_headers, resp_headers))
    if request_problems and not is_error:
        violations.append(
            "sandbox answered a success envelope to a request the document rejects: "
            + "; ".join(request_problems)
        )

    # -- response side: openapi-core against the (completeness-reading) document --
    checked = body
    if is_error and "data" in body and body["data"] is None:
        # data is null on every error envelope (reference 2.1; SDK unwrap relies on it) even where
        # the document types data as a non-nullable scalar (DateTime/Boolean/Int32ApiResponse).
        checked = {k: v for k, v in body.items() if k != "data"}
    violations.extend(
        _response_problems(method, path, row["template"], status, media, resp_headers, checked)
    )
    return violations


# openapi-core's verdicts, kept per exact input. The request verdict depends only on what the
# document lets openapi-core read (path, query, the declared header parameters, the security
# scheme's header, the body and its content type), the response verdict only on the operation,
# status, content type, declared response headers and body: equal keys, equal verdicts.
_REQUEST_VERDICTS: dict[tuple, tuple[tuple[str, ...], bool] | str] = {}
_RESPONSE_VERDICTS: dict[tuple, tuple[str, ...]] = {}


@functools.lru_cache(maxsize=1)
def _headers_read_by_the_document() -> tuple[frozenset[str], frozenset[str]]:
    """(request headers, response headers) the document declares anywhere, lower-cased.

    Request: header parameters, apiKey security schemes in a header, cookies if any cookie
    parameter exists, and ``content-type``. A header outside these sets is never read by
    openapi-core's validation, so leaving it out of a cache key cannot merge different verdicts.
    """
    document = spec_dict()
    request = {"content-type", "authorization"}
    response: set[str] = set()
    for operations in document.get("paths", {}).values():
        for name, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            if name == "parameters":
                parameters = operation
            else:
                parameters = operation.get("parameters", [])
                for answer in operation.get("responses", {}).values():
                    response.update(h.lower() for h in (answer.get("headers") or {}))
            for parameter in parameters if isinstance(parameters, list) else []:
                if parameter.get("in") == "header":
                    request.add(str(parameter.get("name")).lower())
                if parameter.get("in") == "cookie" or "$ref" in parameter:
                    request.add("cookie")  # conservative: a $ref may point anywhere
    for scheme in document.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("in") == "header":
            request.add(str(scheme.get("name")).lower())
        elif scheme.get("type") == "http":
            request.add("authorization")
        elif scheme.get("in") == "cookie":
            request.add("cookie")
    return frozenset(request), frozenset(response)


def _read_headers(headers: dict[str, str], names: frozenset[str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in headers.items() if k in names))


def _request_verdict(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    req_raw: bytes,
) -> tuple[tuple[str, ...], bool] | str:
    """(request problems, security problem), or a routing failure message."""
    read, _ = _headers_read_by_the_document()
    key = (method, path, tuple(pairs), _read_headers(req_headers, read), req_raw)
    verdict = _REQUEST_VERDICTS.get(key)
    if verdict is None:
        verdict = _judge_request(method, path, pairs, req_headers, req_raw)
        if len(_REQUEST_VERDICTS) > _CACHE_LIMIT:
            _REQUEST_VERDICTS.clear()
        _REQUEST_VERDICTS[key] = verdict
    return verdict


def _mock_request(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    req_raw: bytes,
) -> MockRequest:
    request = MockRequest(
        _SPEC_HOST,
        method.lower(),
        path,
        args=None,
        headers=req_headers,
        data=req_raw or None,
        content_type=_media_type(req_headers.get("content-type")) or "application/json",
    )
    from werkzeug.datastructures import ImmutableMultiDict

    request.parameters.query = ImmutableMultiDict(pairs)
    return request


def _judge_request(
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    req_raw: bytes,
) -> tuple[tuple[str, ...], bool] | str:
    request = _mock_request(method, path, pairs, req_headers, req_raw)
    request_problems: list[str] = []
    security_problem = False
    try:
        for exc in request_openapi().iter_request_errors(request):
            if type(exc).__name__ in ("SecurityNotFound", "SecurityValidationError"):
                security_problem = True
                continue
            if _caused_by(exc, "EmptyQueryParameterValue"):
                # ``?cursor=``: allowEmptyValue's OAS 3.0 default is disputed (schemathesis sends
                # it); ASP.NET binds an empty value to null (= omitted). Not a sandbox fault.
                continue
            request_problems.extend(_describe(exc, "request"))
    except (PathNotFound, OperationNotFound, ServerNotFound) as exc:  # pragma: no cover - guarded
        return f"openapi-core could not route the request: {exc!r}"
    return tuple(request_problems), security_problem


def _response_problems(
    method: str,
    path: str,
    template: str,
    status: int,
    media: str,
    resp_headers: dict[str, str],
    checked: dict[str, Any],
) -> tuple[str, ...]:
    """openapi-core's response verdict for the operation behind ``path`` (cached, see above)."""
    _, read = _headers_read_by_the_document()
    raw = json.dumps(checked).encode()
    key = (method, template, status, media, _read_headers(resp_headers, read), raw)
    verdict = _RESPONSE_VERDICTS.get(key)
    if verdict is None:
        response = MockResponse(
            raw,
            status_code=status,
            headers=resp_headers,
            content_type=media or "application/octet-stream",
        )
        request = _mock_request(method, path, [], {}, b"")
        problems: list[str] = []
        for exc in response_openapi().iter_response_errors(request, response):
            problems.extend(_describe(exc, "response"))
        verdict = tuple(problems)
        if len(_RESPONSE_VERDICTS) > _CACHE_LIMIT:
            _RESPONSE_VERDICTS.clear()
        _RESPONSE_VERDICTS[key] = verdict
    return verdict


def _envelope_rules(
    row: dict[str, Any],
    body: dict[str, Any],
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    resp_headers: dict[str, str],
) -> list[str]:
    out: list[str] = []
    query = dict(pairs)
    if "error" not in body:
        out.append(
            "envelope has no 'error' key (always serialised, null on success; reference 2.1)"
        )
    meta = body.get("meta")
    if "meta" not in body or meta is None:
        out.append(
            "envelope has no 'meta' (meta.activityId is on every v2 response; reference 2.1)"
        )
    elif isinstance(meta, dict):
        activity = meta.get("activityId")
        if not isinstance(activity, str) or not activity.strip():
            out.append(f"meta.activityId missing or empty: {activity!r}")
    error = body.get("error")
    data_present = "data" in body
    if error is None:
        if not data_present or body["data"] is None:
            out.append("success envelope (error null) without a payload in 'data'")
    else:
        if data_present and body["data"] is not None:
            out.append("error envelope carries non-null 'data' (data is null on error)")
        code = error.get("code") if isinstance(error, dict) else None

        outcome = resp_headers.get("x-request-outcome")
        if outcome is not None and outcome.strip().lower() not in OUTCOME_VALUES:
            out.append(f"X-Request-Outcome {outcome!r} is not one of {sorted(OUTCOME_VALUES)}")
        if code in ("Timeout", "OutcomeUnknown", "Busy") and outcome is None:
            out.append(f"{code} error without an X-Request-Outcome header (reference 2.3)")

    applied = resp_headers.get("x-request-timeout-applied")
    if applied is not None:
        try:
            seconds = float(applied)
            if not REQUEST_TIMEOUT_RANGE[0] <= seconds <= REQUEST_TIMEOUT_RANGE[1]:
                out.append(f"X-Request-Timeout-Applied {applied!r} is outside 1-300 s")
        except ValueError:
            out.append(f"X-Request-Timeout-Applied {applied!r} is not a number of seconds")

    error_code = error.get("code") if isinstance(error, dict) else None
    # Deadline outside 1-300 (header or ?requestTimeout=) -> Validation (reference 2.3).
    for source, raw in (
        ("X-Request-Timeout", req_headers.get("x-request-timeout")),
        ("requestTimeout", query.get("requestTimeout")),
    ):
        if raw is None:
            continue
        try:
            seconds = float(raw)
            bad = not REQUEST_TIMEOUT_RANGE[0] <= seconds <= REQUEST_TIMEOUT_RANGE[1]
        except ValueError:
            bad = True
        if bad and error_code != "Validation":
            out.append(
                f"{source}={raw!r} is outside 1-300 s: expected a Validation error envelope, "
                f"got {'success' if error is None else error_code!r}"
            )

    # limit above 5000 on a cursor-paged list -> Validation (reference 2.6; the document's
    # parameter description: "Maximum allowed value is 5000").
    limit_raw = query.get("limit")
    limit: int | None = None
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            limit = None
    if row["paged"] and limit is not None and limit > MAX_PAGE_LIMIT and error_code != "Validation":
        out.append(
            f"limit={limit} exceeds the maximum 5000: expected a Validation error envelope, "
            f"got {'success' if error is None else error_code!r}"
        )

    paging = meta.get("paging") if isinstance(meta, dict) else None
    if error is None and isinstance(meta, dict):
        if not row["paged"] and paging is not None:
            out.append("meta.paging on an operation that is not cursor-paged (omitted otherwise)")
        if row["paged"] and isinstance(paging, dict):
            has_more = paging.get("hasMore")
            cursor = paging.get("nextCursor")
            if not isinstance(has_more, bool):
                out.append(f"meta.paging.hasMore is not a boolean: {has_more!r}")
            elif has_more != bool(cursor):
                out.append(
                    f"meta.paging inconsistent: hasMore={has_more} but nextCursor={cursor!r}"
                )
        data = body.get("data")
        if (
            row["limit"]
            and limit is not None
            and limit > 0
            and isinstance(data, list)
            and len(data) > limit
        ):
            out.append(f"limit={limit} but {len(data)} items returned")
    return out


# ---- prose-only endpoints ---------------------------------------------------------------------


def _judge_trade_platforms(method: str, status: int, content_type: str, raw: bytes) -> list[str]:
    if method != "GET" or status in (404, 405):
        return []
    if status != 200:
        return [f"/api/TradePlatforms answered HTTP {status}"]
    ok, data = _json_or_none(raw)
    out: list[str] = []
    if _media_type(content_type) != "application/json":
        out.append(f"/api/TradePlatforms content type {content_type!r}, expected application/json")
    if not ok or not isinstance(data, list):
        return [
            *out,
            "/api/TradePlatforms must be a plain JSON array (no v2 envelope; reference 3)",
        ]
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            out.append(f"/api/TradePlatforms[{index}] is not an object")
            continue
        try:
            uuid.UUID(str(item.get("id")))
        except ValueError:
            out.append(f"/api/TradePlatforms[{index}].id is not a GUID string: {item.get('id')!r}")
        if not isinstance(item.get("id"), str):
            out.append(f"/api/TradePlatforms[{index}].id must be a string")
        kind = item.get("type")
        if not (kind in ("MT4", "MT5") or (isinstance(kind, int) and not isinstance(kind, bool))):
            out.append(
                f"/api/TradePlatforms[{index}].type must be 'MT4'/'MT5' or a number: {kind!r}"
            )
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            out.append(f"/api/TradePlatforms[{index}].name must be a string: {name!r}")
    return out


def _judge_discovery(status: int, content_type: str, raw: bytes) -> list[str]:
    if status != 200:
        return [f"OIDC discovery answered HTTP {status}"]
    ok, doc = _json_or_none(raw)
    if not ok or not isinstance(doc, dict):
        return ["OIDC discovery document is not a JSON object"]
    out = []
    if _media_type(content_type) != "application/json":
        out.append(f"OIDC discovery content type {content_type!r}, expected application/json")
    endpoint = doc.get("token_endpoint")
    if not isinstance(endpoint, str) or not re.match(r"^https?://", endpoint):
        out.append(f"OIDC discovery token_endpoint must be an absolute URL: {endpoint!r}")
    grants = doc.get("grant_types_supported")
    if grants is not None and (not isinstance(grants, list) or "client_credentials" not in grants):
        out.append(f"grant_types_supported lacks client_credentials: {grants!r}")
    return out


def _judge_token(
    method: str,
    pairs: list[tuple[str, str]],
    req_headers: dict[str, str],
    req_raw: bytes,
    status: int,
    content_type: str,
    raw: bytes,
) -> list[str]:
    if method != "POST":
        return [] if status in (404, 405) else [f"token endpoint answered {method} with {status}"]
    ok, body = _json_or_none(raw)
    out: list[str] = []
    if _media_type(content_type) != "application/json":
        out.append(f"token endpoint content type {content_type!r}, expected application/json")
    if status != 200:
        if status not in (400, 401):
            out.append(f"token endpoint error with HTTP {status} (OAuth2 uses 400/401)")
        if not ok or not isinstance(body, dict) or not isinstance(body.get("error"), str):
            out.append(
                "token endpoint error body must be JSON with an 'error' string (RFC 6749 5.2)"
            )
        return out
    form = dict(parse_qsl(req_raw.decode("utf-8", "replace"))) if req_raw else {}
    if form and form.get("grant_type") != "client_credentials":
        out.append(
            f"token issued for grant_type={form.get('grant_type')!r}; only client_credentials"
        )
    if not ok or not isinstance(body, dict):
        return [*out, "token answer is not a JSON object"]
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        out.append("token answer lacks a non-empty access_token string")
    if not isinstance(body.get("token_type"), str) or body["token_type"].lower() != "bearer":
        out.append(f"token_type must be 'Bearer': {body.get('token_type')!r}")
    expires = body.get("expires_in")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= 0:
        out.append(f"expires_in must be a positive number of seconds: {expires!r}")
    return out


# --------------------------------------------------------------------------------------------
# Recorded exchanges from the sandbox's control API
# --------------------------------------------------------------------------------------------

# port -> set of roles observed ("main" answered a main operation, "sidecar" a sidecar operation).
# The sandbox records the port by name ("main"/"sidecar"); numbers are learnt from the answers.
_PORT_ROLES: dict[str, set[str]] = {}
_NAMED_ROLES = {"main", "sidecar"}


def fetch_exchanges(
    control_url: str, since: int = 0, *, timeout: float = 60.0
) -> tuple[list[dict], int]:
    """Every exchange recorded after ``since`` (follows ``next`` until the log is drained)."""
    collected: list[dict] = []
    cursor = since
    with httpx.Client(timeout=timeout) as client:
        for _ in range(10_000):
            answer = client.get(f"{control_url.rstrip('/')}/exchanges", params={"since": cursor})
            answer.raise_for_status()
            payload = answer.json()
            batch = payload.get("exchanges") or []
            next_seq = payload.get("next", cursor)
            collected.extend(batch)
            if not batch or next_seq == cursor:
                cursor = next_seq
                break
            cursor = next_seq
    return collected, cursor


def _learn_port_roles(exchanges: Iterable[dict]) -> dict[str, set[str]]:
    """Record which kinds of operation each port answered with 200 (returns this batch's view)."""
    batch: dict[str, set[str]] = {}
    for ex in exchanges:
        port = ex.get("port")
        if port is None or int(ex.get("status") or 0) != 200:
            continue
        path, _ = _split_url(str(ex.get("path") or ""), None)
        if not path.startswith("/api/v2/"):
            continue
        row, _known = find_operation(str(ex.get("method") or "GET"), path)
        if row is not None:
            role = "sidecar" if row["sidecar"] else "main"
            _PORT_ROLES.setdefault(str(port), set()).add(role)
            batch.setdefault(str(port), set()).add(role)
    return batch


def _port_role(port: Any) -> str | None:
    """The port's role: its recorded name, else the one kind of operation it answered with 200."""
    if port is None:
        return None
    if str(port).lower() in _NAMED_ROLES:
        return str(port).lower()
    roles = _PORT_ROLES.get(str(port), set())
    return next(iter(roles)) if len(roles) == 1 else None


def validate_recorded(control_url: str, since: int = 0) -> tuple[list[str], int]:
    """Pull ``/exchanges`` from the control API and judge every one of them.

    Returns ``(violations, next_seq)``; pass ``next_seq`` back as ``since`` to judge only newer
    exchanges. Identical exchanges (up to ``meta.activityId``) are judged once.
    """
    exchanges, next_seq = fetch_exchanges(control_url, since)
    batch = _learn_port_roles(exchanges)
    violations: list[str] = []
    for port, roles in sorted(batch.items()):
        if roles == {"main", "sidecar"} or (port in _NAMED_ROLES and roles - {port}):
            violations.append(
                f"port {port} answered {sorted(roles)} operations with 200; "
                "the main port must 404 the 13 sidecar operations and vice versa"
            )
    grouped: dict[str, list[str]] = {}
    for ex in exchanges:
        for message in validate_exchange(
            str(ex.get("method") or "GET"),
            str(ex.get("path") or "/"),
            ex.get("query"),
            ex.get("requestHeaders"),
            ex.get("requestBody"),
            int(ex.get("status") or 0),
            ex.get("responseHeaders"),
            ex.get("responseBody"),
            port_role=_port_role(ex.get("port")),
        ):
            grouped.setdefault(message, []).append(f"#{ex.get('seq')}@{ex.get('port')}")
    for message, where in grouped.items():
        seen = ", ".join(where[:3]) + (f" (+{len(where) - 3} more)" if len(where) > 3 else "")
        violations.append(f"{message}  [{seen}]")
    return violations, next_seq
