"""Trade platforms learn their server's time zone; stored server times become true instants.

Until now the mirror held the server's wall clock as if it were UTC, which is exactly a
conversion with offset 0: ``time_zone_applied`` starts there. Where an offset is already known
(set on the platform before this runs, e.g. by a fixture or a hand-edited row) the stored values
are converted now; otherwise the first snapshot run asks the server and converts them with the
same function (``platforms.mirror.zones.shift_server_times``), whole minutes, nothing lost.
"""

import django.core.validators
from django.db import migrations, models

from platforms.mirror.zones import rebase_delta, shift_server_times


def convert_known_offsets(apps, schema_editor):
    """Re-base every platform whose zone is known onto it (the migration's data step)."""
    TradePlatform = apps.get_model("platforms", "TradePlatform")
    for platform in TradePlatform.objects.all():
        target = platform.time_zone_override
        if target is None:
            target = platform.time_zone_reported
        if target is None or target == platform.time_zone_applied:
            continue
        shift_server_times(lambda name: apps.get_model("platforms", name), platform.pk,
                           rebase_delta(platform.time_zone_applied, target))
        TradePlatform.objects.filter(pk=platform.pk).update(time_zone_applied=target)


def back_to_wall_clock(apps, schema_editor):
    """Reverse: the stored values become the server's wall clock again (offset 0)."""
    TradePlatform = apps.get_model("platforms", "TradePlatform")
    for platform in TradePlatform.objects.exclude(time_zone_applied=0):
        shift_server_times(lambda name: apps.get_model("platforms", name), platform.pk,
                           rebase_delta(platform.time_zone_applied, 0))
        TradePlatform.objects.filter(pk=platform.pk).update(time_zone_applied=0)


class Migration(migrations.Migration):

    dependencies = [
        ("platforms", "0015_auditevent_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="tradeplatform",
            name="time_zone_applied",
            field=models.IntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="tradeplatform",
            name="time_zone_override",
            field=models.IntegerField(
                blank=True,
                help_text="Blank = what the server reports. E.g. 120 for a server on UTC+2. "
                "Stored trade times are re-based by the next snapshot run.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(-720),
                    django.core.validators.MaxValueValidator(840),
                ],
                verbose_name="time zone override (minutes east of UTC)",
            ),
        ),
        migrations.AddField(
            model_name="tradeplatform",
            name="time_zone_reported",
            field=models.IntegerField(
                blank=True,
                editable=False,
                help_text="Read from MT4 ManagerCommon.timeZone / MT5 TimeGet by every "
                "snapshot run.",
                null=True,
                verbose_name="reported time zone (minutes east of UTC)",
            ),
        ),
        migrations.RunPython(convert_known_offsets, back_to_wall_clock, elidable=False),
    ]
