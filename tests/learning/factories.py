import datetime

import factory
from django.utils import timezone

from learning.models import BotProfile, ExerciseAttempt, TelegramUser, WeeklyReport
from tests.exercises.factories import ExerciseFactory


class TelegramUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TelegramUser

    telegram_id = factory.Sequence(lambda n: str(100_000 + n))
    username = factory.Sequence(lambda n: f"learner{n}")
    name = "Learner"
    telegram_data = factory.LazyFunction(lambda: {"language_code": "en"})


class BotProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BotProfile

    user = factory.SubFactory(TelegramUserFactory)
    bot_id = "Bulgarian"
    user_language = "en"


class ExerciseAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExerciseAttempt

    user = factory.SubFactory(TelegramUserFactory)
    exercise = factory.SubFactory(ExerciseFactory)
    verdict = factory.LazyAttribute(lambda o: o.exercise.verdicts.get(is_reference=True))
    answer = factory.LazyAttribute(lambda o: o.verdict.answer)
    answer_text = factory.LazyAttribute(lambda o: o.verdict.answer_text)
    answer_key = factory.LazyAttribute(lambda o: o.verdict.answer_key)
    is_correct = True


class WeeklyReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WeeklyReport

    user = factory.SubFactory(TelegramUserFactory)
    bot_id = "Bulgarian"
    week_start_date = factory.LazyFunction(
        lambda: timezone.now().date() - datetime.timedelta(days=timezone.now().weekday() + 7)
    )
    short_report = "Your week in numbers"
