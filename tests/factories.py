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
