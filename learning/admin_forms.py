"""The learner pages' forms and how their values read for people.

Settings (a user's `custom_settings`, a profile's `settings`) are edited as `key: value` lines and
checked with the API's rules before anything is written: the characters and size limits of stored
JSON (`duoniche.api.validation`) and each known key's validator (`learning.effective_settings`).
An invalid value is a form error; a key nothing reads is kept, and the page warns about it.
"""

from __future__ import annotations

import html
import json
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.utils.html import format_html_join, strip_tags
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy
from pydantic import TypeAdapter, ValidationError

from duoniche.api.validation import StoredJson, parse_json_body
from duoniche.language_tags import is_language_tag, normalise_language_code
from learning.effective_settings import settings_check
from learning.models import BotProfile, TelegramUser

#: What an empty value reads as on the pages.
DASH = "—"

_STORED_JSON: TypeAdapter[dict[str, Any]] = TypeAdapter(StoredJson)


# --- reading values -------------------------------------------------------------------------------


def readable_value(value: Any) -> str:
    """One value in words: strings as they are, lists comma-separated, empty as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return DASH
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list | tuple):
        return ", ".join(readable_value(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key} {readable_value(item)}" for key, item in value.items())
    return str(value)


def readable_lines(value: Any) -> SafeString | str:
    """An object as `key: value` lines (escaped); a dash when there is nothing."""
    if not value:
        return DASH
    if not isinstance(value, dict):
        return readable_value(value)
    return format_html_join(
        "", "<div>{}: {}</div>", ((key, readable_value(item)) for key, item in value.items())
    )


def plain_text(text: str | None) -> str:
    """Telegram-HTML feedback as the learner reads it, without tags or entities; a dash if empty."""
    if not text:
        return DASH
    return html.unescape(strip_tags(text)) or DASH


# --- editing settings -----------------------------------------------------------------------------


def _line_value(text: str) -> Any:
    """A value after `key:`: JSON when it parses (numbers, lists, true), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _line_text(value: Any) -> str:
    if isinstance(value, str) and _line_value(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


class SettingsField(forms.Field):
    """Settings as `key: value` lines; empty means none (stored as null)."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            gettext_lazy(
                "One setting per line, as key: value (for example session_exercise_limit: 20 or "
                'exclude_topics: ["food"]). Leave empty for none.'
            ),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, dict):
            return "\n".join(f"{key}: {_line_text(item)}" for key, item in value.items())
        if isinstance(value, str):
            return value  # a bound form's own text
        return json.dumps(value, ensure_ascii=False)

    def to_python(self, value: Any) -> dict[str, Any] | None:
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        parsed: dict[str, Any] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            key, colon, rest = line.partition(":")
            key = key.strip()
            if not colon or not key:
                raise forms.ValidationError(
                    gettext_lazy("Line %(number)s is not of the form key: value."),
                    code="invalid",
                    params={"number": number},
                )
            if key in parsed:
                raise forms.ValidationError(
                    gettext_lazy("The setting %(key)s is given twice."),
                    code="invalid",
                    params={"key": key},
                )
            parsed[key] = _line_value(rest.strip())
        return parsed

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != (initial or None)
        except forms.ValidationError:
            return True

    def validate(self, value: Any) -> None:
        """The API's rules for stored JSON, then each known key's own rule."""
        super().validate(value)
        if value is None:
            return
        _, errors = parse_json_body(json.dumps(value, ensure_ascii=False).encode())
        if errors:
            raise forms.ValidationError(
                gettext_lazy("Not storable: %(problem)s."),
                code="invalid",
                params={"problem": errors[0]["msg"]},
            )
        try:
            _STORED_JSON.validate_python(value)
        except ValidationError as error:
            raise forms.ValidationError(
                gettext_lazy("Not storable: %(problem)s."),
                code="invalid",
                params={"problem": error.errors(include_url=False)[0]["msg"]},
            ) from None
        invalid = settings_check(value).invalid
        if invalid:
            raise forms.ValidationError(
                [
                    forms.ValidationError(
                        gettext_lazy("%(key)s: %(rule)s"),
                        code="invalid",
                        params={"key": key, "rule": rule},
                    )
                    for key, rule in invalid.items()
                ]
            )


class SettingsWarnings:
    """A form whose settings fields note the keys nothing reads (kept, but worth a warning)."""

    settings_fields: tuple[str, ...] = ()
    cleaned_data: dict[str, Any]
    changed_data: list[str]
    fields: dict[str, forms.Field]

    def unknown_settings(self) -> dict[str, list[str]]:
        """Field name → keys no part of DuoNiche reads, for the fields this form cleaned."""
        found = {}
        for name in self.settings_fields:
            if name not in self.changed_data:  # unchanged: warned about when it was saved
                continue
            value = self.cleaned_data.get(name)
            if isinstance(value, dict):
                unknown = settings_check(value).unknown
                if unknown:
                    found[name] = unknown
        return found


def changed_values(form: forms.BaseForm) -> dict[str, Any]:
    """The fields a valid form changed, with their cleaned values (what a staff save writes)."""
    return {name: form.cleaned_data[name] for name in form.changed_data}


def warn_unknown_settings(request: HttpRequest, form: Any, subject: str) -> None:
    """After a save: a warning per settings field that got keys nothing reads (they are kept)."""
    if not isinstance(form, SettingsWarnings) or not hasattr(form, "cleaned_data"):
        return
    for name, keys in form.unknown_settings().items():
        messages.warning(
            request,
            gettext(
                "%(subject)s: %(field)s has keys that no part of DuoNiche reads: %(keys)s. "
                "They were kept, but they change nothing."
            )
            % {"subject": subject, "field": form.fields[name].label, "keys": ", ".join(keys)},
        )


class TelegramUserForm(SettingsWarnings, forms.ModelForm):
    settings_fields = ("custom_settings",)
    custom_settings = SettingsField(label=gettext_lazy("Custom settings"))

    class Meta:
        model = TelegramUser
        fields = ("custom_settings",)  # the admin passes its own field list


class BotProfileForm(SettingsWarnings, forms.ModelForm):
    """The profile form: `user_language` stored as the API stores it, settings checked as above."""

    settings_fields = ("settings",)
    settings = SettingsField(label=gettext_lazy("Settings"))

    class Meta:
        model = BotProfile
        fields = ("user_language", "settings")  # the admin passes its own field list

    def clean_user_language(self) -> str:
        code = self.cleaned_data["user_language"]
        if not is_language_tag(code):
            raise forms.ValidationError(
                gettext_lazy("Not a language tag: give a code such as en, ru or pt-BR."),
                code="invalid",
            )
        return normalise_language_code(code)
