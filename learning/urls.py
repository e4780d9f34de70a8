from duoniche.api.routing import api_route
from learning import apis, report_apis, validate_apis

urlpatterns = [
    *api_route("users/", apis.UserEnsureApi.as_view(), name="users-ensure"),
    *api_route(
        "users/by-telegram-id/{telegram_id}",
        apis.UserByTelegramIdApi.as_view(),
        name="users-by-telegram-id",
    ),
    *api_route("users/{user_id}", apis.UserUpdateApi.as_view(), name="users-update"),
    *api_route(
        "users/{user_id}/bots/{bot_id}/block", apis.ProfileBlockApi.as_view(), name="profiles-block"
    ),
    *api_route(
        "users/{user_id}/bots/{bot_id}/preferences/session_reminders",
        apis.SessionRemindersApi.as_view(),
        name="profiles-session-reminders",
    ),
    *api_route(
        "users/{user_id}/bots/{bot_id}/preferences",
        apis.PreferencesApi.as_view(),
        name="profiles-preferences",
    ),
    *api_route(
        "users/{user_id}/bots/{bot_id}/next-action/",
        apis.NextActionApi.as_view(),
        name="profiles-next-action",
    ),
    *api_route(
        "users/{user_id}/next_action/", apis.LegacyNextActionApi.as_view(), name="users-next-action"
    ),
    *api_route(
        "users/{user_id}/bots/{bot_id}/reports/latest-detailed",
        report_apis.LatestDetailedReportApi.as_view(),
        name="reports-latest-detailed",
    ),
    *api_route(
        "exercises/{exercise_id}/validate/",
        validate_apis.ExerciseValidateApi.as_view(),
        name="exercises-validate",
    ),
    *api_route(
        "exercises/validate/",
        validate_apis.LegacyExerciseValidateApi.as_view(),
        name="exercises-validate-legacy",
    ),
]
