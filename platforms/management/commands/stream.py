"""``manage.py stream``: the realtime bridge as its own process (production, Redis layer), with
the coverage accounts' ``/events`` listeners (never in a Celery worker)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from django.core.management.base import BaseCommand

from platforms.live.runner import run_bridges


class Command(BaseCommand):
    help = (
        "Bridge the platforms' SignalR hubs to the channel layer (one bridge per platform; "
        "extra copies stand by behind a Redis lock), and listen to each enabled coverage "
        "account's LP bridge /events socket (fills refresh its snapshot and settle hedges)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--platform",
            type=int,
            action="append",
            dest="platforms",
            default=None,
            help="platform pk to bridge (repeatable; default: every enabled platform)",
        )

    def handle(self, *args, platforms=None, **options):
        async def main() -> None:
            task = asyncio.create_task(run_bridges(platforms))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, task.cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self.stdout.write("realtime bridge running; Ctrl-C stops it")
        asyncio.run(main())
