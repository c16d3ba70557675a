from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.views import overview

dashboard_patterns = [
    path("", overview.overview, name="overview"),
    path("platforms/<int:pk>/health/", overview.platform_health, name="platform-health"),
]

urlpatterns = [
    path("", include((dashboard_patterns, "dashboard"))),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
