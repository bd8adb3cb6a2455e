from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.health import health, ready

admin.site.site_header = "pncp-mirror"
admin.site.site_title = "pncp-mirror admin"
admin.site.index_title = "Browse and audit the PNCP mirror"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    path("ready", ready, name="ready"),
    path("api/v1/auth/", include("accounts.urls")),
    path("api/v1/", include("pncp.api.ops_urls")),
    path("api/v1/", include("pncp.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("django_prometheus.urls")),
]
