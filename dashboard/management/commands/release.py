"""``manage.py release``: what every deploy runs once, before the new processes start."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from platforms.access.roles import ROLE_PERMISSIONS, sync_roles

#: Plotly's package data beside plotly.min.js that no page loads (its sample datasets, theme
#: JSON and the Jupyter widget bundle): 15 MB that collectstatic would otherwise hash and
#: compress on every release.
PLOTLY_UNUSED = ["datasets", "templates", "widgetbundle.js"]


class Command(BaseCommand):
    help = (
        "Release steps, in order, stopping at the first failure (exit status 1): the "
        "deployment check (no warning allowed), migrate, collectstatic, and the roles' "
        "permissions brought in line with platforms.access.roles."
    )

    def handle(self, *args, **options):
        # First, so that a misconfigured release stops before it changes the database.
        self._step("check --deploy", "check", deploy=True, fail_level="WARNING")
        # the checks just ran: the next two commands need not run them again
        self._step("migrate", "migrate", interactive=False, verbosity=1, skip_checks=True)
        self._step("collectstatic", "collectstatic", interactive=False, verbosity=1,
                   ignore_patterns=PLOTLY_UNUSED, skip_checks=True)
        self.stdout.write("release: sync roles")
        sync_roles()
        self._verify_roles()
        self.stdout.write(self.style.SUCCESS("release: done"))

    def _step(self, title: str, command: str, **kwargs) -> None:
        self.stdout.write(f"release: {title}")
        try:
            call_command(command, stdout=self.stdout, stderr=self.stderr, **kwargs)
        except CommandError as exc:  # SystemCheckError is one
            raise CommandError(f"release stopped at {title}: {exc}") from exc

    def _verify_roles(self) -> None:
        """sync_roles skips a permission it cannot find; a release must not."""
        missing = []
        for role, codenames in ROLE_PERMISSIONS.items():
            held = set(Group.objects.get(name=role).permissions.values_list(
                "codename", flat=True))
            missing += [f"{role}: {c}" for c in codenames if c not in held]
        if missing:
            raise CommandError("release stopped at sync roles: permissions not found: "
                               + ", ".join(missing))
