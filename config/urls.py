from django.contrib import admin
from django.urls import include, path

from config.health import health, ready

admin.site.site_header = "pncp-mirror"
admin.site.site_title = "pncp-mirror admin"
admin.site.index_title = "Browse and audit the PNCP mirror"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    path("ready", ready, name="ready"),
    path("", include("django_prometheus.urls")),
]
