"""factory_boy factories for staff users and platforms."""

from __future__ import annotations

import uuid

import factory
from django.contrib.auth import get_user_model

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

    from platforms.models import PlatformAccess

    for platform in platforms:
        PlatformAccess.objects.update_or_create(
            user=user, platform=platform, defaults={"group_masks": group_masks}
        )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
