from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views

dashboard_patterns = [
    path("", views.overview, name="overview"),
    path("platforms/<int:pk>/health/", views.platform_health, name="platform-health"),
]

urlpatterns = [
    path("", include((dashboard_patterns, "dashboard"))),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
