"""The "moderator" group: exactly the permissions the exercise moderation console needs.

Moderators view and change exercises (edit content, decisions), view, change and delete verdicts
(the admin refuses to delete a reference answer), and view the review history.
"""

from django.db import migrations

GROUP = "moderator"
PERMISSIONS = (
    "view_exercise",
    "change_exercise",
    "view_exerciseanswer",
    "change_exerciseanswer",
    "delete_exerciseanswer",
    "view_exercisereview",
)


def create_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after `migrate` (post_migrate); make sure they exist now.
    app_config = apps.get_app_config("exercises")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=GROUP)
    permissions = Permission.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="exercises", codename__in=PERMISSIONS
    )
    if permissions.count() != len(PERMISSIONS):
        raise RuntimeError(f"missing exercises permissions for the {GROUP} group")
    group.permissions.set(permissions)


def remove_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("exercises", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
