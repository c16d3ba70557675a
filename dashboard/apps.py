from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from dashboard.middleware import mark_active_at_login

        user_logged_in.connect(mark_active_at_login, dispatch_uid="dashboard-active-at-login")
