"""Writes about trade platforms (each one transactional and audited)."""

from __future__ import annotations

from django.db import transaction

from platforms import audit
from platforms.connections import learn_server_zone
from platforms.models import PlatformEnvironment, TradePlatform
from platforms.sandbox.process import SandboxInfo


@transaction.atomic
def register_sandbox_platforms(info: SandboxInfo) -> list[TradePlatform]:
    """Point the two "Sandbox" platforms at a running sandbox (ports change between runs)."""
    registered = []
    for kind, platform_id in (("MT4", info.mt4_id), ("MT5", info.mt5_id)):
        platform, created = TradePlatform.objects.update_or_create(
            name=f"Sandbox {kind}",
            defaults={
                "kind": kind,
                "environment": PlatformEnvironment.SANDBOX,
                "api_base_url": info.base_url,
                "sidecar_base_url": info.sidecar_url,
                "oauth_authority": info.authority,
                "client_id": info.client_id,
                "client_secret": info.client_secret,
                "platform_id": platform_id,
                "enabled": True,
            },
        )
        audit.record(
            actor=audit.Actor.system(),
            action="platform.create" if created else "platform.change",
            platform=platform,
            target=platform.name,
            after={"api_base_url": info.base_url, "sidecar_base_url": info.sidecar_url},
            detail="registered by the demo",
        )
        learn_server_zone(platform)  # its clock's zone, before any page reads its times
        registered.append(platform)
    return registered
