"""Operation forms: every value is validated here, before a task exists or the platform is
called to write. ``payload()`` gives the JSON-safe parameters the task stores (never a secret).

Forms that need the market (symbols, prices, orders, groups, logins) take a
``platforms.trading.selectors.Market``; those reads are the only platform calls a form makes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django import forms
from django.contrib.auth import authenticate
from django.utils import timezone
from django_otp import devices_for_user, match_token

from platforms.access.fields import BoundedDateField, LoginListField
from platforms.trading import kinds
from platforms.trading.models import TaskKind

K = TaskKind
MONEY_MAX = Decimal("100000000")  # 100 million in one operation is a typo, not a deposit
LEVERAGES = [1, 2, 5, 10, 20, 25, 33, 50, 66, 75, 100, 125, 150, 175, 200, 300, 400, 500, 1000]


def _price_field(label: str, required: bool = False) -> forms.DecimalField:
    return forms.DecimalField(label=label, required=required, min_value=Decimal("0"),
                              max_digits=14, decimal_places=5)


class OperationForm(forms.Form):
    """Base: the request id generated when the form was rendered travels with every post."""

    request_id = forms.UUIDField(widget=forms.HiddenInput)
    kind: str = ""

    def __init__(self, *args, kind: str, market=None, account=None, **kwargs) -> None:
        kwargs.setdefault("initial", {}).setdefault("request_id", uuid.uuid4())
        super().__init__(*args, **kwargs)
        self.kind, self.market, self.account = kind, market, account

    def payload(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k != "request_id"}
        return {k: _jsonable(v) for k, v in data.items() if v not in (None, "", [])}

    def secret(self) -> str:
        return ""


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class MoneyForm(OperationForm):
    amount = forms.DecimalField(max_digits=12, decimal_places=2, max_value=MONEY_MAX)
    comment = forms.CharField(max_length=100, required=False,
                              help_text="Kept in full here; the platform comment holds "
                                        f"{kinds.MT4_COMMENT_MAX - kinds.TAG_HEX_DIGITS - 2} "
                                        "characters after the request tag.")
    expiration = BoundedDateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.kind != K.CREDIT_IN:
            del self.fields["expiration"]
        else:
            self.fields["expiration"].required = True
            self.fields["expiration"].help_text = "Credit needs an expiration date."

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if self.kind == K.CORRECTION:
            if amount == 0:
                raise forms.ValidationError("A correction must not be zero.")
        elif amount <= 0:
            raise forms.ValidationError("Enter a positive amount; the operation gives the sign.")
        return amount

    def clean_expiration(self):
        value = self.cleaned_data.get("expiration")
        if value and value <= timezone.now().date():
            raise forms.ValidationError("The expiration must be in the future.")
        return value

    def payload(self) -> dict:
        data = super().payload()
        data["amount"] = f"{self.cleaned_data['amount']:.2f}"
        data.setdefault("comment", "")
        return data


class _OrderSides:
    BUY_SIDE = {"Buy", "BuyLimit", "BuyStop"}

    @staticmethod
    def check_stops(form, command: str, ref: Decimal, sl, tp) -> None:
        buy = command in _OrderSides.BUY_SIDE
        if sl:
            if buy and sl >= ref:
                form.add_error("sl", f"For a buy the stop loss must be below {ref}.")
            if not buy and sl <= ref:
                form.add_error("sl", f"For a sell the stop loss must be above {ref}.")
        if tp:
            if buy and tp <= ref:
                form.add_error("tp", f"For a buy the take profit must be above {ref}.")
            if not buy and tp >= ref:
                form.add_error("tp", f"For a sell the take profit must be below {ref}.")


class OpenOrderForm(OperationForm):
    symbol = forms.CharField(max_length=12)
    command = forms.ChoiceField(label="Side", choices=[("Buy", "Buy"), ("Sell", "Sell")])
    volume = forms.DecimalField(label="Volume (lots)", max_digits=7, decimal_places=2,
                                min_value=Decimal("0.01"), max_value=Decimal("1000"))
    price = _price_field("Price")
    sl = _price_field("Stop loss")
    tp = _price_field("Take profit")
    comment = forms.CharField(max_length=100, required=False)
    expiration = BoundedDateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.kind == K.OPEN_ORDER:
            del self.fields["price"], self.fields["expiration"]
        else:
            self.fields["command"].choices = [(c, c) for c in
                                              ("BuyLimit", "SellLimit", "BuyStop", "SellStop")]
            self.fields["command"].label = "Type"
            self.fields["price"].required = True
            self.fields["price"].min_value = Decimal("0.00001")

    def clean_symbol(self):
        name = self.cleaned_data["symbol"].strip().upper()
        if self.market.symbol(name) is None:
            raise forms.ValidationError(f"Unknown symbol {name} on this platform.")
        return name

    def clean(self):
        data = super().clean()
        symbol, command = data.get("symbol"), data.get("command")
        if not symbol or not command or self.errors:
            return data
        bid, ask = (Decimal(str(x)) for x in self.market.quote(symbol))
        if self.kind == K.OPEN_ORDER:
            ref = bid if command == "Buy" else ask
        else:
            ref = data["price"]
            valid = {"BuyLimit": ref < ask, "SellLimit": ref > bid,
                     "BuyStop": ref > ask, "SellStop": ref < bid}[command]
            if not valid:
                self.add_error("price", f"{command} price must be on the other side of the "
                                        f"market (bid {bid}, ask {ask}).")
                return data
        _OrderSides.check_stops(self, command, ref, data.get("sl"), data.get("tp"))
        return data


class _OrderForm(OperationForm):
    order = forms.IntegerField(label="Order ticket", min_value=1, max_value=2**31 - 1)

    def clean_order(self):
        order = self.cleaned_data["order"]
        trade = self.market.trade(order)
        state = (getattr(trade, "trade_record_state", "") or "").lower()
        if trade is None or trade.login != self.account.login or state not in ("open", ""):
            raise forms.ValidationError(f"#{order} is not an open order of this account.")
        pending = trade.trade_command not in ("Buy", "Sell")
        if self.kind == K.DELETE_PENDING and not pending:
            raise forms.ValidationError(f"#{order} is a market position; close it instead.")
        if self.kind == K.CLOSE_ORDER and pending:
            raise forms.ValidationError(f"#{order} is a pending order; delete it instead.")
        self.trade = trade
        return order


class ModifyOrderForm(_OrderForm):
    price = _price_field("New price (pending orders)")
    sl = _price_field("Stop loss")
    tp = _price_field("Take profit")

    def clean(self):
        data = super().clean()
        trade = getattr(self, "trade", None)
        if trade is None or self.errors:
            return data
        if data.get("price") and trade.trade_command in ("Buy", "Sell"):
            self.add_error("price", "Only a pending order's price can be changed.")
            return data
        if trade.trade_command in ("Buy", "Sell"):
            bid, ask = (Decimal(str(x)) for x in self.market.quote(trade.symbol))
            ref = bid if trade.trade_command == "Buy" else ask
        else:
            ref = data.get("price") or Decimal(str(trade.open_price))
        _OrderSides.check_stops(self, trade.trade_command, ref, data.get("sl"), data.get("tp"))
        return data


class CloseOrderForm(_OrderForm):
    volume = forms.DecimalField(label="Volume to close (lots, blank = all)", required=False,
                                max_digits=7, decimal_places=2, min_value=Decimal("0.01"))

    def clean(self):
        data = super().clean()
        trade = getattr(self, "trade", None)
        too_much = trade is not None and data.get("volume") and (
            kinds.lots_to_volume(data["volume"]) > trade.volume)
        if too_much:
            self.add_error("volume", f"#{trade.order} has only {trade.volume / 100} lots.")
        return data


class DeletePendingForm(_OrderForm):
    pass


class ProfileForm(OperationForm):
    name = forms.CharField(max_length=128, required=False)
    email = forms.EmailField(max_length=48, required=False)
    phone = forms.CharField(max_length=32, required=False)
    country = forms.CharField(max_length=32, required=False)
    city = forms.CharField(max_length=32, required=False)
    address = forms.CharField(max_length=96, required=False)
    comment = forms.CharField(max_length=64, required=False)

    def clean(self):
        data = super().clean()
        if not any(data.get(f) for f in kinds.PROFILE_FIELDS):
            raise forms.ValidationError("Change at least one field.")
        return data


class GroupForm(OperationForm):
    group = forms.CharField(max_length=16)

    def clean_group(self):
        group = self.cleaned_data["group"].strip()
        groups = self.market.groups() if self.market else []
        if groups and group not in groups:
            raise forms.ValidationError(f"Group {group} does not exist on this platform.")
        return group


class LeverageForm(OperationForm):
    leverage = forms.TypedChoiceField(choices=[(x, f"1:{x}") for x in LEVERAGES], coerce=int)


class ConfirmOnlyForm(OperationForm):
    """Enable / disable / read-only: nothing to fill in, the confirmation says it all."""


class CreateAccountForm(GroupForm):
    name = forms.CharField(max_length=128)
    email = forms.EmailField(max_length=48, required=False)
    phone = forms.CharField(max_length=32, required=False)
    country = forms.CharField(max_length=32, required=False)
    leverage = forms.TypedChoiceField(choices=[(x, f"1:{x}") for x in LEVERAGES], coerce=int,
                                      initial=100)
    comment = forms.CharField(max_length=64, required=False)


class ResetPasswordForm(OperationForm):
    new_password = forms.CharField(
        min_length=5, max_length=15, strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="5-15 characters. Never shown again, never stored in clear.",
    )
    investor = forms.BooleanField(required=False, label="Investor (read-only) password")

    def payload(self) -> dict:
        return {"investor": bool(self.cleaned_data.get("investor"))}

    def secret(self) -> str:
        return self.cleaned_data["new_password"]


class BulkForm(OperationForm):
    logins = LoginListField(max_login=2**31 - 1, max_count=1000,
                            widget=forms.Textarea(attrs={"rows": 4}),
                            help_text="Logins separated by spaces, commas or new lines.")
    group = forms.CharField(max_length=16, required=False)
    leverage = forms.TypedChoiceField(choices=[(x, f"1:{x}") for x in LEVERAGES], coerce=int,
                                      required=False, empty_value=None)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.kind != K.BULK_GROUP:
            del self.fields["group"]
        else:
            self.fields["group"].required = True
        if self.kind != K.BULK_LEVERAGE:
            del self.fields["leverage"]
        else:
            self.fields["leverage"].required = True

    def clean_logins(self):
        logins = self.cleaned_data["logins"]
        missing = sorted(set(logins) - self.market.existing_logins(logins))
        if missing:
            raise forms.ValidationError(
                f"Not on this platform: {', '.join(map(str, missing[:20]))}.")
        return logins

    def clean_group(self):
        return GroupForm.clean_group(self)


FORMS: dict[str, type[OperationForm]] = {
    **{k: MoneyForm for k in kinds.MONEY_KINDS},
    K.OPEN_ORDER: OpenOrderForm,
    K.PLACE_PENDING: OpenOrderForm,
    K.MODIFY_ORDER: ModifyOrderForm,
    K.CLOSE_ORDER: CloseOrderForm,
    K.DELETE_PENDING: DeletePendingForm,
    K.CREATE_ACCOUNT: CreateAccountForm,
    K.EDIT_PROFILE: ProfileForm,
    K.CHANGE_GROUP: GroupForm,
    K.CHANGE_LEVERAGE: LeverageForm,
    K.ENABLE: ConfirmOnlyForm,
    K.DISABLE: ConfirmOnlyForm,
    K.READONLY_ON: ConfirmOnlyForm,
    K.READONLY_OFF: ConfirmOnlyForm,
    K.RESET_PASSWORD: ResetPasswordForm,
    **{k: BulkForm for k in kinds.BULK_COMMANDS},
}


# ------------------------------------------------------------------------------ re-auth

REAUTH_SESSION_KEY = "trading_reauth_at"
REAUTH_MAX_AGE = dt.timedelta(minutes=5)


def reauth_fresh(request) -> bool:
    at = request.session.get(REAUTH_SESSION_KEY)
    if not at:
        return False
    return timezone.now() - dt.datetime.fromtimestamp(at, tz=dt.UTC) < REAUTH_MAX_AGE


def mark_reauth(request) -> None:
    request.session[REAUTH_SESSION_KEY] = timezone.now().timestamp()


def has_totp(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


class ReauthForm(forms.Form):
    """Money operations ask again for the password, or the TOTP code when the user has 2FA."""

    password = forms.CharField(required=False, strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete":
                                                                 "current-password"}))
    otp_token = forms.CharField(required=False, label="Authenticator code", max_length=8,
                                widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                              "inputmode": "numeric"}))

    def __init__(self, *args, user, request=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.request = request  # the sign-in throttle counts a wrong password here too
        self.totp = has_totp(user)
        del self.fields["password" if self.totp else "otp_token"]

    def clean(self):
        data = super().clean()
        if self.totp:
            if not data.get("otp_token") or match_token(self.user, data["otp_token"]) is None:
                raise forms.ValidationError("The authenticator code is not valid.")
        elif not data.get("password") or authenticate(
            self.request, username=self.user.get_username(), password=data["password"]
        ) is None:
            raise forms.ValidationError("The password is not correct.")
        return data
