"""Leave room on each exercise page so the per-attempt counter bump stays a HOT update.

Every recorded attempt adds one to `attempts_count`. That column is in no index, but on a full
page PostgreSQL must put the new row version on another page and add it to all eight indexes of
the table. With 10% of each page free the update stays on its page and touches no index. Pages
written before this migration keep their layout until the table is rewritten (VACUUM FULL).
"""

from django.db import migrations

TABLE = "exercises_exercise"


def set_fillfactor(value: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = {int(value)})")

    return apply


class Migration(migrations.Migration):
    dependencies = [("exercises", "0002_moderator_group")]

    operations = [
        migrations.RunPython(set_fillfactor(90), set_fillfactor(100)),
    ]
