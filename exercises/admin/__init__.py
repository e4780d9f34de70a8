"""The exercises admin: the moderation console (the queue and the exercise page) and the verdict
and review history pages. Importing the package registers the model admins."""

from exercises.admin import exercise, verdicts

__all__ = ["exercise", "verdicts"]
