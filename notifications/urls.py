from django.urls import URLPattern

from duoniche.api.routing import api_route
from notifications import apis

urlpatterns: list[URLPattern] = [
    *api_route(
        "notifications/{task_id}/relevance",
        apis.NotificationRelevanceApi.as_view(),
        name="notifications-relevance",
    ),
]
