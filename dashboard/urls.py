from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from dashboard.login_security import TwoFactorAdminSite
from dashboard.views import (
    accounts,
    coverage,
    live,
    market,
    metrics,
    mirror,
    overview,
    preferences,
    search,
    trades,
    trading,
    two_factor,
)
from dashboard.views.server import health as server_health
from dashboard.views.server import journal as server_journal
from dashboard.views.server import messaging as server_messaging
from dashboard.views.server import plugins as server_plugins
from dashboard.views.server import reports as server_reports

dashboard_patterns = [
    path("", overview.overview, name="overview"),
    path("preferences/time-zone/", preferences.time_zone, name="time-zone"),
    path("search/", search.client_search, name="client-search"),
    path("platforms/<int:pk>/health/", overview.platform_health, name="platform-health"),
    # --- trades, history, market
    path("platforms/<int:pk>/trades/", trades.trade_list, name="trades"),
    path("platforms/<int:pk>/trades/export.csv", trades.trade_export, name="trades-export"),
    path("platforms/<int:pk>/history/", trades.history_list, name="history"),
    path("platforms/<int:pk>/history/export.csv", trades.history_export, name="history-export"),
    path("platforms/<int:pk>/symbols/", market.symbol_list, name="symbols"),
    path("platforms/<int:pk>/symbols/<str:symbol>/", market.symbol_chart, name="symbol"),
    path("platforms/<int:pk>/groups/", market.group_list, name="groups"),
    path("platforms/<int:pk>/online/", market.online_list, name="online"),
    # --- accounts
    path("platforms/<int:pk>/accounts/", accounts.account_list, name="accounts"),
    path("platforms/<int:pk>/accounts/export.csv", accounts.account_export,
         name="accounts-export"),
    path("platforms/<int:pk>/accounts/columns/", accounts.account_columns,
         name="account-columns"),
    path("platforms/<int:pk>/accounts/<int:login>/", accounts.account_card, name="account"),
    path("platforms/<int:pk>/accounts/<int:login>/tab/<str:tab>/", accounts.account_tab,
         name="account-tab"),
    # --- live
    path("margins/", live.margins, name="margins"),
    path("platforms/<int:pk>/margins/", live.margins, name="platform-margins"),
    path("platforms/<int:pk>/margins/<int:login>/alert/", live.margin_alert,
         name="margin-alert"),
    # --- coverage (net exposure)
    path("exposure/", coverage.exposure_page, name="exposure"),
    path("exposure/export.csv", coverage.exposure_export, name="exposure-export"),
    path("platforms/<int:pk>/exposure/", coverage.exposure_page, name="platform-exposure"),
    path("platforms/<int:pk>/exposure/export.csv", coverage.exposure_export,
         name="platform-exposure-export"),
    path("platforms/<int:pk>/exposure/hedge/<str:action>/", coverage.hedge, name="hedge"),
    # --- mirror
    path("platforms/<int:pk>/snapshots/", mirror.snapshot_page, name="snapshots"),
    path("platforms/<int:pk>/snapshots/run/", mirror.snapshot_run_now, name="snapshot-run"),
    path("platforms/<int:pk>/snapshots/<int:run_id>/", mirror.snapshot_run_row,
         name="snapshot-run-row"),
    path("platforms/<int:pk>/snapshots/<int:run_id>/<str:table>.csv",
         mirror.snapshot_run_export, name="snapshot-run-export"),
    # --- trading
    path("platforms/<int:pk>/accounts/<int:login>/operations/<str:kind>/", trading.operation,
         name="operation"),
    path("platforms/<int:pk>/operations/new/<str:kind>/", trading.operation,
         name="platform-operation"),
    path("platforms/<int:pk>/operations/", trading.task_list, name="operation-tasks"),
    path("platforms/<int:pk>/operations/tasks/<int:task_pk>/", trading.task_detail,
         name="operation-task"),
    path("platforms/<int:pk>/operations/tasks/<int:task_pk>/<str:action>/",
         trading.task_action, name="operation-task-action"),
    path("operations/audit/", trading.audit_log, name="operation-audit"),
    # --- server
    path("platforms/<int:pk>/server/health/", server_health.health_page, name="server-health"),
    path("platforms/<int:pk>/server/journal/", server_journal.journal, name="server-journal"),
    path("platforms/<int:pk>/server/mail/", server_messaging.mail_compose, name="server-mail"),
    path("platforms/<int:pk>/server/mail/jobs/<int:job_id>/", server_messaging.mail_job,
         name="server-mail-job"),
    path("platforms/<int:pk>/server/mailbox/", server_messaging.mailbox, name="server-mailbox"),
    path("platforms/<int:pk>/server/news/", server_messaging.news, name="server-news"),
    path("platforms/<int:pk>/server/plugins/", server_plugins.plugin_list, name="server-plugins"),
    path("platforms/<int:pk>/server/plugins/<int:pos>/", server_plugins.plugin_detail,
         name="server-plugin"),
    path("platforms/<int:pk>/server/command/", server_plugins.external_command,
         name="server-command"),
    path("platforms/<int:pk>/server/reports/", server_reports.report_page, name="server-reports"),
    path("platforms/<int:pk>/server/reports/<int:job_id>/", server_reports.report_detail,
         name="server-report"),
    path("platforms/<int:pk>/server/reports/<int:job_id>/export.<str:fmt>",
         server_reports.report_export, name="server-report-export"),
]

# The admin asks for a verified TOTP device when DASHBOARD_ADMIN_REQUIRE_2FA is on.
admin.site.__class__ = TwoFactorAdminSite

urlpatterns = [
    path("healthz", server_health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include((dashboard_patterns, "dashboard"))),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", two_factor.two_factor, name="two-factor"),
    # One sign-in page for the whole site (throttled, then the TOTP step): the admin's own
    # login form would skip the enrolment step.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
]

# Error pages inside the normal frame (templates/404.html, 403.html; 500 without the database).
handler500 = "dashboard.views.errors.server_error"
