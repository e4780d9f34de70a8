"""The moderator's edit form: one field per part of the exercise, per exercise type.

A fill-in-the-blank exercise is edited as its sentence, one field per word and a choice of the
word for each blank; a choose type as one field per option and the option that is correct; a
story adds its text, an accent exercise its meaning. The form builds the stored `data` and
`correct_answer` from the fields and checks them with `exercise_staff_edit_check` (the import's
validation), so every problem shows on the form, next to the field it concerns where it has one.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from duoniche.enums import ExerciseType
from exercises.bank import OPTION_LIMITS
from exercises.models import Exercise
from exercises.moderation import reference_verdict
from exercises.staff_edit import exercise_staff_edit_check

#: The model fields the form edits as they are; the content fields are the form's own.
MODEL_FIELDS = ("language_level", "topic")
TAG_FIELDS = ("grammar", "vocabulary")
MAX_WORDS = 20  # the import's limit of data.words
#: `data.words[2]: ...` -> ("data.words", 2, "...")
_PROBLEM = re.compile(r"^(?P<path>[a-z_.]+)(?:\[(?P<index>\d+)\])?(?:\.[a-z_]+)?: (?P<text>.+)$")


def _text_field(label: str, *, rows: int = 0, required: bool = False) -> forms.CharField:
    widget: forms.Widget = (
        forms.Textarea(attrs={"rows": rows, "cols": 80, "class": "vLargeTextField"})
        if rows
        else forms.TextInput(attrs={"size": 80, "class": "vTextField"})
    )
    return forms.CharField(label=label, required=required, strip=True, widget=widget)


class ExerciseEditForm(forms.ModelForm):
    """The parts every type has (level, topic, tags); a subclass adds the type's own parts."""

    #: What the edit service gets once the form is valid (`data`, `correct_answer`, ...).
    content: dict[str, Any]
    #: The key of the learner-visible choices in `data` ("options" or "words").
    choices_key: ClassVar[str] = "options"
    #: The names of the choice fields: `option_1`, `option_2`, ... (or `word_<n>`).
    choice_prefix: ClassVar[str] = "option"

    class Meta:
        model = Exercise
        fields = MODEL_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exercise = self.instance
        self.fields["grammar"] = _text_field(gettext("Grammar tags"), rows=3)
        self.fields["vocabulary"] = _text_field(gettext("Vocabulary tags"), rows=3)
        for name in TAG_FIELDS:
            self.fields[name].help_text = gettext("One tag per line.")
        if exercise.pk is None:
            return
        tags = exercise.grammar_tags if isinstance(exercise.grammar_tags, dict) else {}
        for name in TAG_FIELDS:
            self.initial[name] = "\n".join(str(tag) for tag in tags.get(name) or [])
        data = exercise.data if isinstance(exercise.data, dict) else {}
        reference = reference_verdict(exercise)
        choices = [str(choice) for choice in data.get(self.choices_key) or []]
        for position in range(self.choice_count(exercise)):
            name = f"{self.choice_prefix}_{position + 1}"
            self.fields[name] = _text_field(self.choice_label(position + 1))
            if position < len(choices):
                self.initial[name] = choices[position]
        self.add_parts(data, choices, reference.answer if reference is not None else {})

    # --- what a type defines ----------------------------------------------------------------

    @classmethod
    def choice_count(cls, exercise: Exercise) -> int:
        return OPTION_LIMITS[exercise.exercise_type][1]

    @staticmethod
    def choice_label(number: int) -> str:
        return gettext("Option %(number)s") % {"number": number}

    def add_parts(self, data: dict[str, Any], choices: list[str], answer: dict[str, Any]) -> None:
        """Add the type's own fields with their initial values."""
        positions = self._positions()
        self.fields["correct"] = forms.TypedChoiceField(
            label=gettext("Correct option"),
            choices=positions,
            coerce=int,
            widget=forms.RadioSelect,
        )
        if answer.get("answer") in choices:
            self.initial["correct"] = choices.index(answer["answer"]) + 1

    @classmethod
    def part_names(cls, exercise: Exercise) -> list[str]:
        """The content fields of the type, in the order the page shows them."""
        return [*cls._choice_names(exercise), "correct"]

    def build(self, cleaned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `data` and `correct_answer` the fields describe (errors added to the fields)."""
        options = self._choices(cleaned)
        return {"options": list(options.values())}, {"answer": self._chosen(options, "correct")}

    #: Where a problem with a `data` key shows ({path: field}); choices map by position.
    part_of_path: ClassVar[dict[str, str]] = {}

    # --- shared machinery ---------------------------------------------------------------------

    @classmethod
    def _choice_names(cls, exercise: Exercise) -> list[str]:
        return [f"{cls.choice_prefix}_{n}" for n in range(1, cls.choice_count(exercise) + 1)]

    def _positions(self) -> list[tuple[int, str]]:
        count = sum(1 for name in self.fields if name.startswith(f"{self.choice_prefix}_"))
        return [(n, self.choice_label(n)) for n in range(1, count + 1)]

    def _choices(self, cleaned: dict[str, Any]) -> dict[int, str]:
        """The filled-in choices by their number (an emptied field drops the choice)."""
        return {
            number: cleaned[name]
            for number, name in enumerate(
                (name for name in self.fields if name.startswith(f"{self.choice_prefix}_")),
                start=1,
            )
            if cleaned.get(name)
        }

    def _chosen(self, choices: dict[int, str], field: str) -> str:
        number = self.cleaned_data.get(field)
        if number in choices:
            return choices[number]
        self.add_error(field, gettext("The chosen one is empty: fill it in or choose another."))
        return ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors or self.instance.pk is None:
            return cleaned
        data, correct_answer = self.build(cleaned)
        if self.errors:
            return cleaned
        self.content = {
            "data": data,
            "correct_answer": correct_answer,
            "grammar_tags": {
                name: [line.strip() for line in cleaned[name].splitlines() if line.strip()]
                for name in TAG_FIELDS
            },
            "language_level": cleaned.get("language_level"),
            "topic": cleaned.get("topic"),
        }
        try:
            exercise_staff_edit_check(
                exercise=self.instance,
                data=data,
                correct_answer=correct_answer,
                grammar_tags=self.content["grammar_tags"],
                language_level=self.content["language_level"],
                topic=self.content["topic"],
            )
        except ValidationError as error:
            for message in error.messages:
                self._add_problem(message, cleaned)
        return cleaned

    def _add_problem(self, message: str, cleaned: dict[str, Any]) -> None:
        """A validation message on the field it names (`data.options[1]: ...`), else the form."""
        match = _PROBLEM.match(message)
        field = None
        if match is not None:
            path, index = match["path"], match["index"]
            if path == f"data.{self.choices_key}" and index is not None:
                numbers = list(self._choices(cleaned))
                if int(index) < len(numbers):
                    field = f"{self.choice_prefix}_{numbers[int(index)]}"
            elif path.startswith("grammar_tags."):
                field = path.removeprefix("grammar_tags.")
            elif path in MODEL_FIELDS:
                field = path
            else:
                field = self.part_of_path.get(path)
        if field in self.fields:
            self.add_error(field, match["text"] if match else message)
        else:
            self.add_error(None, message)


class ChooseSentenceForm(ExerciseEditForm):
    part_of_path = {"correct_answer.answer": "correct"}


class ChooseAccentForm(ExerciseEditForm):
    part_of_path = {"correct_answer.answer": "correct", "data.meaning": "meaning"}

    def add_parts(self, data: dict[str, Any], choices: list[str], answer: dict[str, Any]) -> None:
        super().add_parts(data, choices, answer)
        self.fields["meaning"] = _text_field(gettext("Meaning"), rows=4)
        self.fields["meaning"].help_text = gettext(
            "Shown after the learner answers; the Telegram HTML subset (<b>, <i>, …) is allowed."
        )
        self.initial["meaning"] = data.get("meaning") or ""

    @classmethod
    def part_names(cls, exercise: Exercise) -> list[str]:
        return [*super().part_names(exercise), "meaning"]

    def build(self, cleaned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        data, answer = super().build(cleaned)
        meaning = (cleaned.get("meaning") or "").replace("\r\n", "\n")  # a browser's line breaks
        return {**data, "meaning": meaning or None}, answer


class StoryForm(ExerciseEditForm):
    part_of_path = {"correct_answer.answer": "correct", "data.content_text": "story"}

    def add_parts(self, data: dict[str, Any], choices: list[str], answer: dict[str, Any]) -> None:
        super().add_parts(data, choices, answer)
        self.fields["story"] = _text_field(gettext("Story"), rows=8, required=True)
        self.fields["story"].help_text = gettext(
            "Changing the text sends the story to new audio; its current audio is kept otherwise."
        )
        self.initial["story"] = data.get("content_text") or ""

    @classmethod
    def part_names(cls, exercise: Exercise) -> list[str]:
        return ["story", *super().part_names(exercise)]

    def build(self, cleaned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        data, answer = super().build(cleaned)
        return {"content_text": cleaned["story"], **data}, answer


class FillInTheBlankForm(ExerciseEditForm):
    choices_key = "words"
    choice_prefix = "word"
    part_of_path = {
        "data.text_with_blanks": "sentence",
        "correct_answer.words": "blank_1",
    }

    @classmethod
    def choice_count(cls, exercise: Exercise) -> int:
        """The words there are, and room for two more (at least five fields)."""
        words = exercise.data.get("words") if isinstance(exercise.data, dict) else None
        return min(MAX_WORDS, max(5, len(words or []) + 2))

    @staticmethod
    def choice_label(number: int) -> str:
        return gettext("Word %(number)s") % {"number": number}

    def add_parts(self, data: dict[str, Any], choices: list[str], answer: dict[str, Any]) -> None:
        self.fields["sentence"] = _text_field(gettext("Sentence"), rows=2, required=True)
        self.fields["sentence"].help_text = gettext(
            "Write ___ (three underscores) for each blank: one or two blanks."
        )
        self.initial["sentence"] = data.get("text_with_blanks") or ""
        positions = self._positions()
        correct = [str(word) for word in answer.get("words") or []]
        for number in (1, 2):
            name = f"blank_{number}"
            self.fields[name] = forms.TypedChoiceField(
                label=gettext("Word for blank %(number)s") % {"number": number},
                choices=[("", "—"), *positions],
                coerce=int,
                empty_value=None,
                required=number == 1,
            )
            if len(correct) >= number and correct[number - 1] in choices:
                self.initial[name] = choices.index(correct[number - 1]) + 1
        self.fields["blank_2"].help_text = gettext("Only for a sentence with two blanks.")

    @classmethod
    def part_names(cls, exercise: Exercise) -> list[str]:
        return ["sentence", *cls._choice_names(exercise), "blank_1", "blank_2"]

    def build(self, cleaned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        words = self._choices(cleaned)
        chosen = [self._chosen(words, "blank_1")]
        if cleaned.get("blank_2") is not None:
            chosen.append(self._chosen(words, "blank_2"))
        return (
            {"text_with_blanks": cleaned["sentence"], "words": list(words.values())},
            {"words": chosen},
        )

    def _add_problem(self, message: str, cleaned: dict[str, Any]) -> None:
        match = _PROBLEM.match(message)
        if match is not None and match["path"] == "correct_answer.words" and match["index"]:
            self.add_error(f"blank_{int(match['index']) + 1}", match["text"])
            return
        super()._add_problem(message, cleaned)


EDIT_FORMS: dict[str, type[ExerciseEditForm]] = {
    ExerciseType.FILL_IN_THE_BLANK: FillInTheBlankForm,
    ExerciseType.CHOOSE_SENTENCE: ChooseSentenceForm,
    ExerciseType.CHOOSE_ACCENT: ChooseAccentForm,
    ExerciseType.STORY_COMPREHENSION: StoryForm,
}


def edit_form_class(exercise: Exercise | None) -> type[ExerciseEditForm]:
    if exercise is None:
        return ExerciseEditForm
    return EDIT_FORMS.get(exercise.exercise_type, ExerciseEditForm)


def edit_fieldsets(exercise: Exercise) -> list[tuple[Any, dict[str, Any]]]:
    """The content part of the exercise page: the type's parts, then level, topic and tags."""
    return [
        (
            _("Content"),
            {
                "fields": edit_form_class(exercise).part_names(exercise),
                "description": _(
                    "Saving checks the content as an import does, recomputes its content hash "
                    "(the same content as another exercise is refused), keeps this version in the "
                    "history, drops the stored verdicts that no longer hold and publishes the "
                    "exercise. Empty the field of an option to remove it."
                ),
            },
        ),
        (_("Level, topic and tags"), {"fields": [*MODEL_FIELDS, *TAG_FIELDS]}),
    ]
