import factory

from duoniche.enums import NotificationType
from notifications.models import NotificationLog
from tests.learning.factories import TelegramUserFactory


class NotificationLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationLog

    dedupe_key = factory.Sequence(lambda n: f"session_reminder:{n}")
    user = factory.SubFactory(TelegramUserFactory)
    bot_id = "Bulgarian"
    notification_type = NotificationType.SESSION_REMINDER
    text = "A new session is ready for you.\n\n/next"
