"""``python manage.py demo``: the whole product on embedded defaults, one command."""

from django.core.management.base import BaseCommand

from dashboard.demo import DemoOptions, run


class Command(BaseCommand):
    help = ("Migrate, fill the mirrors, then run and supervise the sandbox, the dashboard, Celery "
            "workers and beat until Ctrl-C.")

    def add_arguments(self, parser):
        defaults = DemoOptions()
        parser.add_argument("--host", default=defaults.host)
        parser.add_argument("--port", type=int, default=defaults.port)
        parser.add_argument("--sandbox-port", type=int, default=defaults.sandbox_port)
        parser.add_argument("--sidecar-port", type=int, default=defaults.sidecar_port)
        parser.add_argument("--bridge-port", type=int, default=defaults.bridge_port,
                            help="the LP bridge's port (default: the sidecar's + 1)")
        parser.add_argument("--users", type=int, default=defaults.users)
        parser.add_argument("--no-beat", action="store_true")

    def handle(self, *args, **options):
        code = run(
            DemoOptions(
                host=options["host"],
                port=options["port"],
                sandbox_port=options["sandbox_port"],
                sidecar_port=options["sidecar_port"],
                bridge_port=options["bridge_port"],
                users=options["users"],
                beat=not options["no_beat"],
            ),
            say=self._say,
        )
        if code:
            raise SystemExit(code)

    def _say(self, text: str) -> None:
        # flushed: a supervisor's line must reach a pipe (a log, a test) when it happens
        self.stdout.write(text)
        self.stdout.flush()
