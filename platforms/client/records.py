"""Typed records of the CPlugin WebAPI v2 wire, decoded with msgspec.

Field names and types follow the vendor OpenAPI document (``components.schemas``):
attributes are snake_case, the wire is camelCase (``rename="camel"``; the few names
that camel-casing cannot reproduce, such as ``lastIP`` or ``priceSL``, carry an explicit
``msgspec.field(name=...)``). Every field has a default so that absent (null-omitted)
fields decode; unknown fields are ignored. Enum values stay the wire's string names and
flag fields stay the raw ``"A, B"`` string — use :func:`split_flags` to get a set.

The envelope (``{data, error, meta}``) is a generic :class:`Envelope` so one decoder,
``msgspec.json.Decoder(Envelope[list[MT4User]])``, validates envelope and payload in a
single pass (see :func:`envelope_decoder`).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

__all__ = [
    "ApiErrorBody",
    "Envelope",
    "Meta",
    "Paging",
    "TradePlatformInfo",
    "envelope_decoder",
    "split_flags",
]


def split_flags(value: str | None) -> frozenset[str]:
    """Split a wire flag string (``"Enabled, Password"``) into a set of names.

    ``None``, ``""`` and ``"None"`` give an empty set. Names keep the server's spelling;
    compare case-insensitively if you must (``{n.lower() for n in ...}``).
    """
    if not value:
        return frozenset()
    names = {part.strip() for part in value.split(",")}
    names.discard("")
    names.discard("None")
    return frozenset(names)


class _Record(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    """Base of every wire record: camelCase on the wire, unknown fields ignored.

    ``gc=False``: records hold scalars, strings and lists of records, never a reference
    cycle, so the cyclic GC need not track them. Decoding 100,000 accounts otherwise
    triggers repeated full collections over the growing heap (about 3x slower).
    """


# --------------------------------------------------------------------------- envelope


class ApiErrorBody(_Record):
    """``error`` of a v2 envelope."""

    code: str
    #: Raw MetaTrader ResultCode: its name, or an int for a value the server does not know.
    manager_code: str | int | None = None
    message: str | None = None


class Paging(_Record):
    next_cursor: str | None = None
    has_more: bool = False


class Meta(_Record):
    activity_id: str | None = None
    paging: Paging | None = None


class Envelope(_Record, Generic[T]):
    """``{data, error, meta}`` — HTTP 200 for every handled outcome, errors included."""

    data: T | None = None
    error: ApiErrorBody | None = None
    meta: Meta | None = None


@functools.cache
def envelope_decoder(data_type: Any) -> msgspec.json.Decoder:
    """A cached ``Decoder(Envelope[data_type])`` — one msgspec pass for envelope + data."""
    return msgspec.json.Decoder(Envelope[data_type])


#: For error envelopes whose ``data`` does not match the expected type, and for probing.
RAW_ENVELOPE = msgspec.json.Decoder(Envelope[msgspec.Raw])


class TradePlatformInfo(_Record):
    """One entry of ``GET /api/TradePlatforms`` (a plain array, no envelope)."""

    id: str
    name: str | None = None
    #: ``"MT4"`` / ``"MT5"`` (some servers send the enum number).
    type: str | int | None = None
    login: int | None = None
    organization_id: str | None = None
    organization: dict[str, Any] | None = None
    created: datetime | None = None


# --------------------------------------------------------------------------- generated
# Written from the vendor OpenAPI schemas (see docs/client.md), then reviewed by hand.


class MT4User(_Record):
    """v2 DTO describing a trading account. Curated subset of the platforms"""

    login: int = 0
    group: str | None = None
    name: str | None = None
    registration_date: datetime | None = None
    last_date: datetime | None = None
    external_id: str | None = None
    status: str | None = None
    country: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    address: str | None = None
    lead_source: str | None = None
    phone: str | None = None
    email: str | None = None
    comment: str | None = None
    leverage: int = 0
    agent_account: int = 0
    last_ip: int = msgspec.field(default=0, name="lastIP")
    balance: float = 0.0
    credit: float = 0.0
    prev_month_balance: float = 0.0
    prev_balance: float = 0.0
    prev_month_equity: float = 0.0
    prev_equity: float = 0.0
    interest_rate: float = 0.0
    taxes: float = 0.0
    enable_flags: int = 0
    send_reports: int = 0
    mqid: int = 0
    user_color: int = 0


class MT4Trade(_Record):
    """v2 DTO mirroring the platforms TradeRecord. The set of fields is curated"""

    order: int = 0
    login: int = 0
    symbol: str | None = None
    digits: int = 0
    trade_command: str | None = None
    volume: int = 0
    volume_lots: float = 0.0
    trade_record_state: str | None = None
    open_price: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    open_time: datetime | None = None
    close_time: datetime | None = None
    close_price: float = 0.0
    commission: float = 0.0
    commission_agent: float = 0.0
    storage: float = 0.0
    profit: float = 0.0
    taxes: float = 0.0
    magic: int = 0
    comment: str | None = None
    expiration: datetime | None = None
    trade_record_reason: str | None = None
    activation_type: str | None = None
    time_stamp: datetime | None = None
    margin_rate: float = 0.0


class MT4MarginLevel(_Record):
    """v2 DTO mirroring the platforms MarginLevel record. All fields are kept"""

    login: int = 0
    group: str | None = None
    leverage: int = 0
    updated: int = 0
    balance: float = 0.0
    equity: float = 0.0
    volume: int = 0
    margin: float = 0.0
    free: float = 0.0
    level: float = 0.0
    controlling_type: str | None = None
    level_type: str | None = None


class MT4Group(_Record):
    """v2 DTO describing a trading group configuration. Curated subset of the"""

    group: str | None = None
    enable: int = 0
    timeout: int = 0
    otp_mode: str | None = None
    company: str | None = None
    signature: str | None = None
    support_page: str | None = None
    support_email: str | None = None
    copies: int = 0
    reports: int = 0
    default_leverage: int = 0
    default_deposit: float = 0.0
    max_securities: int = 0
    sec_margins_total: int = 0
    currency: str | None = None
    credit: float = 0.0
    margin_call: int = 0
    margin_mode: str | None = None
    margin_stopout: int = 0
    interest_rate: float = 0.0
    use_swap: int = 0
    news_mode: str | None = None
    group_rights: str | None = None
    check_ie_prices: int = msgspec.field(default=0, name="checkIEPrices")
    max_positions: int = 0
    close_reopen: int = 0
    hedge_prohibited: int = 0
    close_fifo: int = msgspec.field(default=0, name="closeFIFO")
    hedge_large_leg: int = 0
    margin_controlling_type: str | None = None
    archive_period: int = 0
    archive_max_balance: int = 0
    stopout_skip_hedged: int = 0
    archive_pending_period: int = 0


class MT4SymbolConfig(_Record):
    """v2 DTO for a symbols full server-side configuration. Curated from"""

    symbol: str | None = None
    description: str | None = None
    source: str | None = None
    currency: str | None = None
    type: int = 0
    digits: int = 0
    trade_mode: str | None = None
    background_color: int = 0
    count: int = 0
    count_original: int = 0
    realtime: int = 0
    starting: datetime | None = None
    expiration: datetime | None = None
    profit_calculation_mode: str | None = None
    filter: int = 0
    filter_counter: int = 0
    filter_limit: float = 0.0
    filter_smoothing: int = 0
    logging: int = 0
    spread: int = 0
    spread_balance: int = 0
    symbol_exec_mode: str | None = None
    swap_enable: int = 0
    swap_type: str | None = None
    swap_long: float = 0.0
    swap_short: float = 0.0
    swap_rollover3_days: int = 0
    contract_size: float = 0.0
    tick_value: float = 0.0
    tick_size: float = 0.0
    stops_level: int = 0
    gtc_mode: str | None = None
    margin_calculation_mode: str | None = None
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    margin_hedged: float = 0.0
    margin_divider: float = 0.0
    percentage: float = 0.0
    point: float = 0.0
    multiply: float = 0.0
    bid_tick_value: float = 0.0
    ask_tick_value: float = 0.0
    long_only: int = 0
    instant_max_volume: int = 0
    margin_currency: str | None = None
    freeze_level: int = 0
    margin_hedged_strong: int = 0
    value_date: datetime | None = None
    quotes_delay: int = 0
    swap_open_price: int = 0
    swap_variation_margin: int = 0


class MT4SymbolInfo(_Record):
    """v2 DTO describing a single symbols market data and metadata as held in"""

    symbol: str | None = None
    digits: int = 0
    type: int = 0
    point: float = 0.0
    spread: int = 0
    direction: str | None = None
    bid: float = 0.0
    ask: float = 0.0
    high: float = 0.0
    low: float = 0.0
    last_time: datetime | None = None


class MT4Online(_Record):
    """v2 DTO describing an online user session entry. Curated subset of the"""

    login: int = 0
    group: str | None = None


class MT4Common(_Record):
    """v2 DTO for MT4 server-wide common settings. Curated subset of the"""

    name: str | None = None
    owner: str | None = None
    build: int = 0
    version: int = 0
    time_zone: int = 0


class MT4ChartBar(_Record):
    """v2 DTO for one OHLC chart bar. Curated from the platforms `RateInfoEx`;"""

    time: datetime | None = None
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: float = 0.0


class MT4ServerLog(_Record):
    """v2 DTO for one MT4 server journal entry. Returned by `JournalRequest`"""

    code: str | None = None
    time: str | None = None
    ip: str | None = None
    message: str | None = None


class MT4DailyReport(_Record):
    """v2 DTO mirroring the platforms `DailyReport`: one end-of-day"""

    login: int = 0
    ctm: datetime | None = None
    group: str | None = None
    bank: str | None = None
    balance_prev: float = 0.0
    balance: float = 0.0
    deposit: float = 0.0
    credit: float = 0.0
    profit_closed: float = 0.0
    profit: float = 0.0
    equity: float = 0.0
    margin: float = 0.0
    margin_free: float = 0.0


class MT4TickInfo(_Record):
    """v2 DTO describing the last known tick for a trading symbol. Pump-cached"""

    symbol: str | None = None
    time: datetime | None = None
    bid: float = 0.0
    ask: float = 0.0


class MT4MailBox(_Record):
    """v2 DTO for a single mailbox entry returned by `GET MailsRequest`"""

    time: datetime | None = None
    sender_login: int = 0
    sender_name: str | None = None
    subject: str | None = None
    body: str | None = None


class MT4Plugin(_Record, omit_defaults=True):
    """v2 DTO for MT4 plugin metadata (sidecar-only). Mirrors the platforms"""

    file: str | None = None
    name: str | None = None
    version: int = 0
    copyright: str | None = None
    enabled: int = 0
    configurable: int = 0
    manager_access: int = 0


class MT4PluginConfig(_Record, omit_defaults=True):
    """v2 DTO for a single plugin parameter pair (sidecar-only)."""

    name: str | None = None
    value: str | None = None


class MT4PluginParam(_Record, omit_defaults=True):
    """v2 DTO for an MT4 plugin together with its parameter set (sidecar-only)."""

    plugin: MT4Plugin | None = None
    params: list[MT4PluginConfig] | None = None


class MT4TradeTransaction(_Record, omit_defaults=True):
    """v2 DTO for a trade transaction — input AND output of `TradeTransaction`."""

    trade_transaction_type: str | None = None
    trade_command: str | None = None
    trade_request_flags: str | None = None
    expiration: datetime | None = None
    order: int = 0
    order_by: int = 0
    symbol: str | None = None
    volume: int = 0
    price: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    ie_deviation: int = 0
    comment: str | None = None
    crc: int = 0


class MT4UserCreate(_Record, omit_defaults=True):
    """Type 1 mutator input — full create shape for `UserRecordNew`."""

    login: int = 0
    group: str | None = None
    name: str | None = None
    external_id: str | None = None
    status: str | None = None
    country: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    address: str | None = None
    lead_source: str | None = None
    phone: str | None = None
    email: str | None = None
    comment: str | None = None
    leverage: int = 0
    agent_account: int = 0
    interest_rate: float = 0.0
    taxes: float = 0.0
    enable_flags: int = 0
    send_reports: int = 0
    mqid: int = 0
    user_color: int = 0


class MT4UserUpdate(_Record, omit_defaults=True):
    """Type 1 mutator input — full-replace shape for `UserRecordUpdate`."""

    group: str | None = None
    name: str | None = None
    external_id: str | None = None
    status: str | None = None
    country: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    address: str | None = None
    lead_source: str | None = None
    phone: str | None = None
    email: str | None = None
    comment: str | None = None
    leverage: int = 0
    agent_account: int = 0
    balance: float = 0.0
    credit: float = 0.0
    interest_rate: float = 0.0
    taxes: float = 0.0
    enable_flags: int = 0
    send_reports: int = 0
    mqid: int = 0
    user_color: int = 0


class MT4UsersGroupOp(_Record, omit_defaults=True):
    """v2 request body for `UsersGroupOp` — bulk group-membership / leverage /"""

    command: str | None = None
    new_group: str | None = None
    leverage: int = 0
    logins: list[int] | None = None


class MT4MailSendRequest(_Record, omit_defaults=True):
    """v2 request DTO for `POST MailSend` (sidecar-only). Sends an"""

    sender_login: int = 0
    sender_name: str | None = None
    subject: str | None = None
    body: str | None = None
    logins: list[int] | None = None


class MT4NewsSendRequest(_Record, omit_defaults=True):
    """v2 request DTO for `POST NewsSend` — pushes a single news item"""

    topic: str | None = None
    category: str | None = None
    body: str | None = None
    high_priority: bool = False


class MT4ExternalCommandBinaryResponse(_Record):
    """v2 DTO for the response of `ExternalCommandBinary` (sidecar-only)."""

    data: bytes | None = None


class MT5User(_Record):
    """MT5 user, v2 read DTO — full field set (A4 expansion). Includes all editable"""

    login: int = 0
    group: str | None = None
    name: str | None = None
    company: str | None = None
    country: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    phone: str | None = None
    e_mail: str | None = None
    comment: str | None = None
    color: int = 0
    leverage: int = 0
    account: str | None = None
    language: int = 0
    address: str | None = None
    id: str | None = None
    status: str | None = None
    agent: int = 0
    lead_campaign: str | None = None
    lead_source: str | None = None
    client_id: int = msgspec.field(default=0, name="clientID")
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    rights: str | None = None
    cert_serial_number: int = 0
    registration: datetime | None = None
    last_access: datetime | None = None
    last_pass_change: datetime | None = None
    last_ip: str | None = msgspec.field(default=None, name="lastIP")
    balance: float = 0.0
    credit: float = 0.0
    interest_rate: float = 0.0
    commission_daily: float = 0.0
    commission_monthly: float = 0.0
    commission_agent_daily: float = 0.0
    commission_agent_monthly: float = 0.0
    balance_prev_day: float = 0.0
    balance_prev_month: float = 0.0
    equity_prev_day: float = 0.0
    equity_prev_month: float = 0.0


class MT5Position(_Record):
    """MT5Position"""

    login: int | None = None
    symbol: str | None = None
    action: str | None = None
    digits: int | None = None
    digits_currency: int | None = None
    contract_size: float | None = None
    position: int | None = None
    external_id: str | None = None
    time_create: datetime | None = None
    time_update: datetime | None = None
    time_create_msc: datetime | None = None
    time_update_msc: datetime | None = None
    price_open: float | None = None
    price_current: float | None = None
    price_sl: float | None = msgspec.field(default=None, name="priceSL")
    price_tp: float | None = msgspec.field(default=None, name="priceTP")
    volume: int | None = None
    volume_ext: int | None = None
    profit: float | None = None
    storage: float | None = None
    rate_profit: float | None = None
    rate_margin: float | None = None
    expert_id: int | None = None
    expert_position_id: int | None = None
    comment: str | None = None
    dealer: int | None = None
    activation_mode: str | None = None
    activation_time: datetime | None = None
    activation_price: float | None = None
    activation_flags: str | None = None
    modification_flags: str | None = None
    reason: str | None = None


class MT5Order(_Record):
    """MT5Order"""

    order: int | None = None
    external_id: str | None = msgspec.field(default=None, name="externalID")
    login: int | None = None
    dealer: int | None = None
    party_id: int | None = msgspec.field(default=None, name="partyID")
    symbol: str | None = None
    digits: int | None = None
    digits_currency: int | None = None
    contract_size: float | None = None
    state: str | None = None
    reason: str | None = None
    time_setup: datetime | None = None
    time_expiration: datetime | None = None
    time_done: datetime | None = None
    type: str | None = None
    type_fill: str | None = None
    type_time: str | None = None
    price_order: float | None = None
    price_trigger: float | None = None
    price_current: float | None = None
    price_sl: float | None = msgspec.field(default=None, name="priceSL")
    price_tp: float | None = msgspec.field(default=None, name="priceTP")
    volume_initial: int | None = None
    volume_current: int | None = None
    expert_id: int | None = msgspec.field(default=None, name="expertID")
    position_id: int | None = msgspec.field(default=None, name="positionID")
    comment: str | None = None
    activation_mode: int | None = None
    activation_time: datetime | None = None
    activation_price: float | None = None
    activation_flags: str | None = None
    time_setup_msc: datetime | None = None
    time_done_msc: datetime | None = None
    rate_margin: float | None = None
    position_by_id: int | None = msgspec.field(default=None, name="positionByID")
    modification_flags: int | None = None
    volume_initial_ext: int | None = None
    volume_current_ext: int | None = None


class MT5Deal(_Record):
    """MT5Deal"""

    deal: int = 0
    external_id: str | None = msgspec.field(default=None, name="externalID")
    login: int | None = None
    dealer: int | None = None
    party_id: int | None = msgspec.field(default=None, name="partyID")
    order: int | None = None
    action: str | None = None
    entry: str | None = None
    digits: int | None = None
    digits_currency: int | None = None
    contract_size: float | None = None
    time: datetime | None = None
    symbol: str | None = None
    price: float | None = None
    price_sl: float | None = msgspec.field(default=None, name="priceSL")
    price_tp: float | None = msgspec.field(default=None, name="priceTP")
    volume: int | None = None
    volume_ext: int | None = None
    volume_closed: int | None = None
    volume_closed_ext: int | None = None
    profit: float | None = None
    value: float | None = None
    storage: float | None = None
    commission: float | None = None
    obsolete_value: float | None = None
    fee: float | None = None
    rate_profit: float | None = None
    rate_margin: float | None = None
    expert_id: int | None = msgspec.field(default=None, name="expertID")
    position_id: int | None = msgspec.field(default=None, name="positionID")
    comment: str | None = None
    profit_raw: float | None = None
    price_position: float | None = None
    tick_value: float | None = None
    tick_size: float | None = None
    flags: int | None = None
    time_msc: datetime | None = None
    reason: str | None = None
    gateway: str | None = None
    price_gateway: float | None = None
    market_bid: float | None = None
    market_ask: float | None = None
    market_last: float | None = None
    modification_flags: str | None = None


class MT5ConGroup(_Record):
    """MT5ConGroup"""

    group: str | None = None
    server: int | None = None
    permissions_flags: str | None = None
    auth_mode: str | None = None
    auth_password_min: int | None = None
    company: str | None = None
    company_page: str | None = None
    company_email: str | None = None
    company_support_page: str | None = None
    company_support_email: str | None = None
    company_catalog: str | None = None
    currency: str | None = None
    currency_digits: int | None = None
    reports_mode: str | None = None
    reports_flags: str | None = None
    reports_smtp: str | None = msgspec.field(default=None, name="reportsSMTP")
    reports_smtp_login: str | None = msgspec.field(default=None, name="reportsSMTPLogin")
    news_mode: str | None = None
    news_category: str | None = None
    news_lang: list[int] | None = None
    mail_mode: str | None = None
    trade_flags: str | None = None
    trade_interest_rate: float | None = None
    trade_virtual_credit: float | None = None
    margin_free_mode: str | None = None
    margin_so_mode: str | None = msgspec.field(default=None, name="marginSOMode")
    margin_call: float | None = None
    margin_stop_out: float | None = None
    demo_leverage: int | None = None
    demo_deposit: float | None = None
    limit_history: str | None = None
    limit_orders: int | None = None
    limit_symbols: int | None = None
    commissions: dict[str, Any] | None = None
    margin_free_profit_mode: int | None = None
    margin_mode: str | None = None
    auth_otp_mode: str | None = msgspec.field(default=None, name="authOTPMode")
    trade_transfer_mode: str | None = None
    margin_flags: str | None = None
    limit_positions: int | None = None
    reports_email: str | None = None
    company_deposit_page: str | None = None
    company_withdrawal_page: str | None = None
    demo_inactivity_period: int | None = None


class MT5SymbolSession(_Record):
    """MT5SymbolSession"""

    open: int | None = None
    open_hours: int | None = None
    open_minutes: int | None = None
    close: int | None = None
    close_hours: int | None = None
    close_minutes: int | None = None


class MT5Symbol(_Record):
    """MT5Symbol"""

    symbol: str | None = None
    path: str | None = None
    isin: str | None = None
    description: str | None = None
    international: str | None = None
    basis: str | None = None
    source: str | None = None
    page: str | None = None
    currency_base: str | None = None
    currency_base_digits: int | None = None
    currency_profit: str | None = None
    currency_profit_digits: int | None = None
    currency_margin: str | None = None
    currency_margin_digits: int | None = None
    color: int | None = None
    color_background: int | None = None
    digits: int | None = None
    point: float | None = None
    multiply: float | None = None
    tick_flags: str | None = None
    tick_book_depth: int | None = None
    filter_soft: int | None = None
    filter_soft_ticks: int | None = None
    filter_hard: int | None = None
    filter_hard_ticks: int | None = None
    filter_discard: int | None = None
    filter_spread_max: int | None = None
    filter_spread_min: int | None = None
    trade_mode: str | None = None
    calc_mode: str | None = None
    exec_mode: str | None = None
    gtc_mode: str | None = None
    fill_flags: str | None = None
    expir_flags: str | None = None
    spread: int | None = None
    spread_balance: int | None = None
    spread_diff: int | None = None
    spread_diff_balance: int | None = None
    tick_value: float | None = None
    tick_size: float | None = None
    contract_size: float | None = None
    stops_level: int | None = None
    freeze_level: int | None = None
    quotes_timeout: int | None = None
    volume_min: int | None = None
    volume_max: int | None = None
    volume_step: int | None = None
    volume_limit: int | None = None
    margin_flags: str | None = None
    margin_initial: float | None = None
    margin_maintenance: float | None = None
    margin_long: float | None = None
    margin_short: float | None = None
    margin_limit: float | None = None
    margin_stop: float | None = None
    margin_stop_limit: float | None = None
    swap_mode: str | None = None
    swap_long: float | None = None
    swap_short: float | None = None
    swap3_day: str | None = None
    time_start: datetime | None = None
    time_expiration: datetime | None = None
    session_quote: list[list[MT5SymbolSession]] | None = None
    session_trade: list[list[MT5SymbolSession]] | None = None
    re_flags: str | None = None
    re_timeout: int | None = None
    ie_check_mode: str | None = None
    ie_timeout: int | None = None
    ie_slip_profit: int | None = None
    ie_slip_losing: int | None = None
    ie_volume_max: int | None = None
    price_settle: float | None = None
    price_limit_max: float | None = None
    price_limit_min: float | None = None
    trade_flags: str | None = None
    order_flags: str | None = None
    margin_rate_initial: dict[str, Any] | None = None
    margin_rate_maintenance: dict[str, Any] | None = None
    options_mode: str | None = None
    price_strike: float | None = None
    margin_rate_liquidity: float | None = None
    face_value: float | None = None
    accrued_interest: float | None = None
    splice_type: str | None = None
    splice_time_type: str | None = None
    splice_time_days: int | None = None
    margin_hedged: float | None = None
    margin_rate_currency: float | None = None
    filter_gap: int | None = None
    filter_gap_ticks: int | None = None
    chart_mode: str | None = None
    ie_flags: str | None = None
    volume_min_ext: int | None = None
    volume_max_ext: int | None = None
    volume_step_ext: int | None = None
    volume_limit_ext: int | None = None
    ie_volume_max_ext: int | None = None
    category: str | None = None
    exchange: str | None = None
    cfi: str | None = None
    sector: str | None = None
    industry: str | None = None
    country: str | None = None
    subscriptions_delay: int | None = None
    swap_year_days: int | None = None
    swap_flags: str | None = None
    swap_rate_sunday: float | None = None
    swap_rate_monday: float | None = None
    swap_rate_tuesday: float | None = None
    swap_rate_wednesday: float | None = None
    swap_rate_thursday: float | None = None
    swap_rate_friday: float | None = None
    swap_rate_saturday: float | None = None


class MT5ConManager(_Record):
    """MT5ConManager"""

    login: int | None = None
    mailbox: str | None = None
    server: int | None = None
    limit_logs: str | None = None
    limit_reports: str | None = None
    right: list[str] | None = None


class MT5Time(_Record):
    """Server time configuration (MT5 CIMTConTime), v2 read DTO."""

    time_zone: int = 0
    time_server: str | None = None
    daylight: bool = False
    daylight_state: int = 0


__all__ += sorted(name for name in list(globals()) if name.startswith(("MT4", "MT5")))
