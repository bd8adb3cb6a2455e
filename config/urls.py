from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.health import health, ready
from pncp.api.exceptions import error_body

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
    # OpenAPI 3 document and its two readers, public (SPECTACULAR_SETTINGS.SERVE_PERMISSIONS)
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("django_prometheus.urls")),
]


# Under /api/ even Django's own 404 and 500 pages speak the API's one error shape.
def api_aware_404(request, exception):
    if request.path.startswith("/api/"):
        body = error_body(404, "not_found", "Não encontrado.", path=request.path)
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


def api_aware_500(request):
    if request.path.startswith("/api/"):
        body = error_body(500, "server_error", "Erro interno do servidor.", path=request.path)
        return JsonResponse(body, status=500)
    return defaults.server_error(request)


handler404 = api_aware_404
handler500 = api_aware_500
