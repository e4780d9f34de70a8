from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from duoniche.dashboard import register_section
        from payments.dashboard import dashboard_revenue

        register_section(
            name="revenue", permission="payments.view_payment", build=dashboard_revenue, order=30
        )
