from importlib import import_module

from django.apps import AppConfig
from django.conf import settings

from platforms.transport import configure_breakers

#: Domains whose ``models`` module holds some of this app's models. Django imports only
#: ``platforms.models`` (the shared ones); :meth:`PlatformsConfig.import_models` imports these,
#: so that ``platforms.models`` never imports a domain (whose models import it back).
DOMAINS_WITH_MODELS = ("access", "coverage", "live", "mirror", "server", "trading")


class PlatformsConfig(AppConfig):
    name = "platforms"
    verbose_name = "Trade platforms"
    default_auto_field = "django.db.models.BigAutoField"

    def import_models(self) -> None:
        super().import_models()
        for domain in DOMAINS_WITH_MODELS:
            import_module(f"{self.name}.{domain}.models")

    def ready(self) -> None:
        # Modules that define or use models load only once the registry is ready: here.
        from platforms.coverage import signals as coverage_signals
        from platforms.mirror import signals as mirror_signals
        from platforms.server.health import record_transition

        # With Redis, every web and worker process sees the same circuit state per platform.
        configure_breakers(
            fail_max=settings.MANAGER_API["BREAKER_FAIL_MAX"],
            reset_timeout=settings.MANAGER_API["BREAKER_RESET_SECONDS"],
            redis_url=settings.REDIS_URL or None,
            listeners=[record_transition],  # the health page shows every circuit transition
        )
        # Per-platform snapshot schedules follow the platform rows (post_save/post_delete);
        # the nav's cached exposure answer follows users and roles.
        mirror_signals.connect()
        coverage_signals.connect()
