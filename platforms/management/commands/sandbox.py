"""``manage.py sandbox ...`` — thin wrapper over ``python -m platforms.sandbox`` (same options)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from platforms.sandbox.cli import main


class Command(BaseCommand):
    help = "Run the sandbox CPlugin WebAPI v2 trade server (see docs/sandbox.md)."

    def run_from_argv(self, argv: list[str]) -> None:
        # Hand every option straight to the sandbox's own argparse parser, so the flags and
        # their help stay identical to ``python -m platforms.sandbox``.
        sys.exit(main(argv[2:]))

    def handle(self, *args, **options) -> None:  # pragma: no cover - run_from_argv is used
        sys.exit(main([]))
