"""factory_boy factories for staff users and platforms."""

from __future__ import annotations

import uuid

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from platforms.models import TradePlatform


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.django.Password("correct-horse-battery")


class TradePlatformFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TradePlatform

    name = factory.Sequence(lambda n: f"Platform {n}")
    kind = "MT4"
    environment = "custom"
    api_base_url = "http://127.0.0.1:9"
    oauth_authority = "http://127.0.0.1:9"
    client_id = "client"
    client_secret = "s3cret-value-never-shown"
    platform_id = factory.LazyFunction(uuid.uuid4)


def grant(user, *platforms, group_masks: str = "", role: str | None = None):
    """Give ``user`` access to ``platforms`` (and the role's permissions, if named)."""
    from django.contrib.auth.models import Group

    from platforms.access.models import PlatformAccess

    for platform in platforms:
        PlatformAccess.objects.update_or_create(
            user=user, platform=platform, defaults={"group_masks": group_masks}
        )
    if role:
        from platforms.access.roles import sync_roles

        # Transactional tests flush every table, taking the migration-made roles with them.
        sync_roles()
        user.groups.add(Group.objects.get(name=role))
    return user


class MirrorAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "platforms.MirrorAccount"

    platform = factory.SubFactory(TradePlatformFactory)
    login = factory.Sequence(lambda n: 200000 + n)
    group = "real\\usd-std"
    name = factory.Sequence(lambda n: f"Client {n}")
    email = factory.LazyAttribute(lambda o: f"client{o.login}@example.com")
    country = "Germany"
    currency = "USD"
    leverage = 100
    balance = 1000.0
    equity = 1000.0
    margin = 100.0
    free_margin = 900.0
    margin_level = 1000.0
    margin_state = "Ok"
    last_seen_at = factory.LazyFunction(timezone.now)


class MirrorOpenTradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "platforms.MirrorOpenTrade"

    platform = factory.SubFactory(TradePlatformFactory)
    ticket = factory.Sequence(lambda n: 5000000 + n)
    login = 200000
    group = "real\\usd-std"
    symbol = "EURUSD"
    command = "Buy"
    volume = 100
    volume_lots = 1.0
    open_price = 1.1
    current_price = 1.1
    profit = 0.0
    last_seen_at = factory.LazyFunction(timezone.now)


class MirrorClosedTradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "platforms.MirrorClosedTrade"

    platform = factory.SubFactory(TradePlatformFactory)
    ticket = factory.Sequence(lambda n: 7000000 + n)
    login = 200000
    group = "real\\usd-std"
    symbol = "EURUSD"
    command = "Sell"
    volume_lots = 1.0
    open_price = 1.1
    close_price = 1.09
    profit = 100.0
    state = "ClosedNormal"
    close_time = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)


class SnapshotRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "platforms.SnapshotRun"

    platform = factory.SubFactory(TradePlatformFactory)
    kind = "full"
    trigger = "schedule"
