"""The "support" group: what helping a learner takes — their account, profiles, weekly reports and
answers, and their payments with the right to refund one. Nothing in the exercise bank.
"""

from django.db import migrations

GROUP = "support"
PERMISSIONS = {
    "learning": (
        "view_telegramuser",
        "change_telegramuser",
        "view_botprofile",
        "change_botprofile",
        "view_weeklyreport",
        "change_weeklyreport",
        "view_exerciseattempt",
    ),
    "payments": ("view_payment", "refund_payment"),
}


def create_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    database = schema_editor.connection.alias
    for label in PERMISSIONS:  # normally created after `migrate`; they must exist now
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=database)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(database).get_or_create(name=GROUP)
    wanted = [
        permission
        for label, codenames in PERMISSIONS.items()
        for permission in Permission.objects.using(database).filter(
            content_type__app_label=label, codename__in=codenames
        )
    ]
    if len(wanted) != sum(len(codenames) for codenames in PERMISSIONS.values()):
        raise RuntimeError(f"missing permissions for the {GROUP} group")
    group.permissions.set(wanted)


def remove_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_refund_claim"),
        ("learning", "0003_report_generation_outbox"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
