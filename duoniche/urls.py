"""Root URLs: the bot API, the admin, the docs and the operator endpoints."""

from __future__ import annotations

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from duoniche import service_views
from duoniche.api.errors import not_found
from duoniche.two_factor_views import two_factor_page

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("learning.urls")),
    path("", include("payments.urls")),
    path("", include("notifications.urls")),
    path("admin/two-factor/", admin.site.admin_view(two_factor_page), name="two_factor"),
    path("admin/", admin.site.urls),
    # The API keeps no-redirect slashes (APPEND_SLASH is off); a person typing /admin is helped.
    path("admin", RedirectView.as_view(url="/admin/", permanent=True)),
    re_path(r"^api/v1/?$", service_views.api_index, name="api-index"),
    re_path(r"^healthz/?$", service_views.healthz, name="healthz"),
    re_path(r"^metrics/?$", service_views.metrics, name="metrics"),
]

if settings.API_DOCS_ENABLED:
    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    ]

# Errors outside the API views: JSON everywhere but the admin.
handler400 = "duoniche.service_views.bad_request"
handler404 = "duoniche.service_views.page_not_found"
handler500 = "duoniche.service_views.server_error"

# Anything else under the API answers the JSON 404, whatever the method.
urlpatterns.append(re_path(r"^api/v1/", not_found))

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
