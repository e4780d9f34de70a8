from duoniche.api.routing import api_route
from payments import apis

urlpatterns = [
    *api_route(
        "payments/invoice-details/{source}/users/{user_id}/bots/{bot_id}",
        apis.InvoiceDetailsApi.as_view(),
        name="payments-invoice-details",
    ),
    *api_route("payments/process", apis.PaymentProcessApi.as_view(), name="payments-process"),
]
