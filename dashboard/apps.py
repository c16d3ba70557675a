from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        # the middleware module uses models: it loads once the registry is ready
        from dashboard import checks  # noqa: F401  (registers the deployment checks)
        from dashboard.middleware import mark_active_at_login

        user_logged_in.connect(mark_active_at_login, dispatch_uid="dashboard-active-at-login")
        # the time-zone module uses models too: the reader's choice is read once, at sign-in
        from dashboard.timezones import remember_preference_at_login

        user_logged_in.connect(remember_preference_at_login,
                               dispatch_uid="dashboard-time-zone-at-login")
