"""Status and priority are two columns: "Complete now" is only a priority now.

A required action that wasn't started was stored with the status "complete_now"; it becomes
"not_started" (its priority, Complete now, comes from the catalogue), and the per-state count of
those actions is folded into the Not started count before the column goes.
"""

from django.db import migrations, models
from django.db.models import F


def complete_now_is_not_started(apps, schema_editor):
    ActionStatus = apps.get_model("readiness", "ActionStatus")
    ReadinessState = apps.get_model("readiness", "ReadinessState")
    ActionStatus.objects.filter(status="complete_now").update(status="not_started")
    ReadinessState.objects.update(actions_not_started=F("actions_not_started") + F("actions_complete_now"))


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0005_run_targets"),
    ]

    operations = [
        migrations.RunPython(complete_now_is_not_started, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="readinessstate",
            name="actions_complete_now",
        ),
        migrations.AlterField(
            model_name="actionstatus",
            name="status",
            field=models.CharField(
                choices=[("not_started", "Not started"), ("in_progress", "In progress"), ("completed", "Completed")],
                max_length=20,
            ),
        ),
    ]
