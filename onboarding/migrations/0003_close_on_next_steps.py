"""Close is no longer a step of its own: it is the Next steps page's button.

Progress that stood at the former Close step stands at Next steps. Completing Next steps now means finishing the
guide, so an unfinished guide keeps Next steps to do (its Close was never selected)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def close_into_next_steps(apps: Any, schema_editor: Any) -> None:
    GuideProgress = apps.get_model("onboarding", "GuideProgress")
    for progress in GuideProgress.objects.filter(
        models.Q(current_step="close") | models.Q(completed_steps__contains=["close"])
        | models.Q(finished_at__isnull=True, completed_steps__contains=["next-steps"])
    ):
        dropped = {"close"} if progress.finished_at is not None else {"close", "next-steps"}
        progress.completed_steps = [s for s in progress.completed_steps if s not in dropped]
        if progress.current_step == "close":
            progress.current_step = "next-steps"
        progress.save(update_fields=["completed_steps", "current_step"])


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0002_exclusions_step")]

    operations = [
        migrations.RunPython(close_into_next_steps, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="guideprogress",
            name="current_step",
            field=models.CharField(
                choices=[
                    ("permissions", "Permissions"),
                    ("exclusions", "Exclusions"),
                    ("incident-contact", "Incident contact"),
                    ("service-review-contact", "Service review contact"),
                    ("next-steps", "Next steps"),
                ],
                default="permissions",
                max_length=32,
            ),
        ),
    ]
