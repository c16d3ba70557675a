"""The exact call each operation kind makes, and making it under the task's key.

A task's wire body is decided once and stored on the task (by the submit for money kinds, by
the claim that first sends it for the others), so that every resend under the same
``Idempotency-Key`` is byte-identical and the server can deduplicate it.
"""

from __future__ import annotations

from platforms.trading import kinds
from platforms.trading.errors import OperationRefused
from platforms.trading.models import TaskKind, TradeTask


def money_wire(task: TradeTask) -> dict:
    """A balance / credit operation's call: a pure function of the payload and the tag."""
    p = task.payload
    _, command = kinds.MONEY_KINDS[task.kind]
    body = {
        "tradeTransactionType": "BrBalance", "tradeCommand": command, "orderBy": task.login,
        "price": float(kinds.signed_amount(task.kind, p)),
        "comment": kinds.tagged_comment(task.comment_tag, p.get("comment", "")),
    }
    if p.get("expiration"):
        body["expiration"] = f"{p['expiration']}T23:59:59Z"
    return {"op": "trade_transaction", "body": body}


def prepare_wire(task: TradeTask, client) -> dict:
    """The exact call to make, decided once (some kinds need a live read to build it)."""
    kind, p, login = task.kind, task.payload, task.login
    K = TaskKind
    if kind in kinds.MONEY_KINDS:
        return money_wire(task)
    if kind in (K.OPEN_ORDER, K.PLACE_PENDING):
        body = {
            "tradeTransactionType": "BrOpen" if kind == K.OPEN_ORDER else "PendingOpen",
            "tradeCommand": p["command"], "orderBy": login, "symbol": p["symbol"],
            "volume": kinds.lots_to_volume(p["volume"]),
            "sl": float(p.get("sl") or 0), "tp": float(p.get("tp") or 0),
            "comment": kinds.tagged_comment(task.comment_tag, p.get("comment", "")),
        }
        if kind == K.OPEN_ORDER:
            tick = client.mt4.tick_info_last(p["symbol"])
            body["price"] = tick.ask if p["command"] == "Buy" else tick.bid
        else:
            body["price"] = float(p["price"])
            if p.get("expiration"):
                body["expiration"] = f"{p['expiration']}T23:59:59Z"
        return {"op": "trade_transaction", "body": body}
    if kind == K.MODIFY_ORDER:
        trade = client.mt4.trade_record_get(int(p["order"]))
        body = {
            "tradeTransactionType": "BrModify", "order": int(p["order"]), "orderBy": login,
            "symbol": trade.symbol,
            "price": float(p["price"]) if p.get("price") else trade.open_price,
            "sl": float(p.get("sl") or 0), "tp": float(p.get("tp") or 0),
        }
        return {"op": "trade_transaction", "body": body}
    if kind in (K.CLOSE_ORDER, K.DELETE_PENDING):
        trade = client.mt4.trade_record_get(int(p["order"]))
        body = {
            "tradeTransactionType": "BrClose" if kind == K.CLOSE_ORDER else "BrDelete",
            "order": int(p["order"]), "orderBy": login, "symbol": trade.symbol,
            "volume": kinds.lots_to_volume(p["volume"]) if p.get("volume") else trade.volume,
        }
        if kind == K.CLOSE_ORDER:
            tick = client.mt4.tick_info_last(trade.symbol)
            body["price"] = tick.bid if trade.trade_command == "Buy" else tick.ask
        return {"op": "trade_transaction", "body": body}
    if kind == K.CREATE_ACCOUNT:
        body = {k: v for k, v in p.items() if v not in (None, "")}
        body["leverage"] = int(body.get("leverage") or 0)
        return {"op": "user_record_new", "body": body}
    if kind == K.RESET_PASSWORD:
        return {"op": "user_password_set", "login": login, "investor": bool(p.get("investor"))}
    if kind in kinds.BULK_COMMANDS:
        return {"op": "users_group_op", "command": kinds.BULK_COMMANDS[kind],
                "logins": [int(x) for x in p["logins"]], "new_group": p.get("group"),
                "leverage": int(p.get("leverage") or 0)}
    changes = _account_changes(task, client)
    op = "mt5_user_record_patch" if task.platform.kind == "MT5" else "user_record_patch"
    return {"op": op, "login": login, "body": changes}


def _account_changes(task: TradeTask, client) -> dict:
    kind, p = task.kind, task.payload
    K = TaskKind
    mt5 = task.platform.kind == "MT5"
    if kind == K.EDIT_PROFILE:
        names = kinds.MT5_PROFILE_FIELDS if mt5 else {f: f for f in kinds.PROFILE_FIELDS}
        return {names[k]: v for k, v in p.items() if k in names}
    if kind == K.CHANGE_GROUP:
        return {"group": p["group"]}
    if kind == K.CHANGE_LEVERAGE:
        return {"leverage": int(p["leverage"])}
    if mt5:
        user = client.mt5.user_get(task.login)
        rights = {r.strip() for r in (user.rights or "").split(",") if r.strip() and r != "None"}
        flag = "Enabled" if kind in (K.ENABLE, K.DISABLE) else "Readonly"
        (rights.add if kind in (K.ENABLE, K.READONLY_ON) else rights.discard)(flag)
        return {"rights": ", ".join(sorted(rights)) or "None"}
    user = client.mt4.user_record_request(task.login)
    bit = kinds.ENABLED_BIT if kind in (K.ENABLE, K.DISABLE) else kinds.READONLY_BIT
    on = kind in (K.ENABLE, K.READONLY_ON)
    return {"enableFlags": (user.enable_flags | bit) if on else (user.enable_flags & ~bit)}


def call(task: TradeTask, client, wire: dict | None) -> tuple[dict, str | None]:
    """Send ``wire`` under the task's key; the answer as a small dict, and the activity id."""
    if wire is None:  # prepared before any send; a row without one is not ours to guess
        raise ValueError(f"task {task.pk} has no wire body")
    key = str(task.request_id)
    op = wire["op"]
    if op == "trade_transaction":
        res = client.mt4.trade_transaction(wire["body"], idempotency_key=key)
        return {"order": res.data.order, "price": res.data.price}, res.activity_id
    if op == "user_record_patch":
        res = client.mt4.user_record_patch(wire["login"], wire["body"], idempotency_key=key)
        return {"login": res.data.login}, res.activity_id
    if op == "mt5_user_record_patch":
        res = client.mt5.user_record_patch(wire["login"], wire["body"], idempotency_key=key)
        return {"login": res.data.login}, res.activity_id
    if op == "user_record_new":
        res = client.mt4.user_record_new(wire["body"], idempotency_key=key)
        return {"login": res.data.login}, res.activity_id
    if op == "user_password_set":
        if not task.secret:
            raise OperationRefused("The new password is no longer held; submit a new reset.")
        res = client.mt4.user_password_set(
            wire["login"], task.secret, change_investor=wire["investor"], idempotency_key=key
        )
        return {}, res.activity_id
    if op == "users_group_op":
        res = client.mt4.users_group_op(
            wire["command"], wire["logins"], new_group=wire["new_group"],
            leverage=wire["leverage"], idempotency_key=key,
        )
        return {}, res.activity_id
    raise OperationRefused(f"unknown wire op {op}")

