from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "pncp-mirror"
admin.site.site_title = "pncp-mirror admin"
admin.site.index_title = "Browse and audit the PNCP mirror"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),
]
