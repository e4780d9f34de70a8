"""The validate endpoints of the bot API v1: check an answer and record the attempt."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from duoniche.api.schema import error_responses, id_parameter
from duoniche.api.views import BotAPIView, drop_none, legacy_endpoint_called
from learning import validate_schemas as schemas
from learning.validation import attempt_validate

EXERCISE_ID = id_parameter("exercise_id")
VALIDATE_ERRORS = error_responses(
    {
        404: ["exercise_not_found", "profile_not_found"],
        422: ["answer_type_mismatch", "answer_shape_invalid", "answer_not_in_options"],
        500: ["exercise_language_unconfigured"],
    },
    body=True,
)


def validation_response(
    *, exercise_id: int, user_id: int, answer: schemas.AnswerObject
) -> Response:
    result = attempt_validate(
        exercise_id=exercise_id,
        user_id=user_id,
        answer=answer.model_dump(),
        now=timezone.now(),
    )
    return Response(drop_none({"is_correct": result.is_correct, "feedback": result.feedback}))


class ExerciseValidateApi(BotAPIView):
    path_schema = schemas.ExerciseIdPath
    body_schema = schemas.ValidateRequest

    @extend_schema(
        operation_id="exercises_validate",
        parameters=[EXERCISE_ID],
        request=schemas.ValidateRequest,
        responses={200: schemas.ValidationResultSchema, **VALIDATE_ERRORS},
    )
    def post(self, request: Request, exercise_id: str) -> Response:
        path, _, body = self.validated(request, exercise_id=exercise_id)
        return validation_response(
            exercise_id=path.exercise_id, user_id=body.user_id, answer=body.answer
        )


class LegacyExerciseValidateApi(BotAPIView):
    body_schema = schemas.LegacyValidateRequest

    @extend_schema(
        operation_id="exercises_validate_legacy",
        request=schemas.LegacyValidateRequest,
        responses={200: schemas.ValidationResultSchema, **VALIDATE_ERRORS},
        deprecated=True,
    )
    def post(self, request: Request) -> Response:
        _, _, body = self.validated(request)
        legacy_endpoint_called("validate", replacement="exercises/{exercise_id}/validate/")
        return validation_response(
            exercise_id=body.exercise_id, user_id=body.user_id, answer=body.answer
        )
