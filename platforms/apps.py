from django.apps import AppConfig


class PlatformsConfig(AppConfig):
    name = "platforms"
    verbose_name = "Trade platforms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from platforms.server.health import record_transition
        from platforms.transport import configure_breakers

        # With Redis, every web and worker process sees the same circuit state per platform.
        configure_breakers(
            fail_max=settings.MANAGER_API["BREAKER_FAIL_MAX"],
            reset_timeout=settings.MANAGER_API["BREAKER_RESET_SECONDS"],
            redis_url=settings.REDIS_URL or None,
            listeners=[record_transition],  # the health page shows every circuit transition
        )

        # Per-platform snapshot schedules follow the platform rows (post_save/post_delete).
