"""Run by ``manage.py shell`` inside the production layout's environment (not imported by
pytest): the sandbox's platforms and coverage accounts registered as an administrator would,
and one finance user granted both platforms. Prints the platforms' pks as JSON."""

import json
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from platforms.access.models import PlatformAccess
from platforms.coverage.services import register_sandbox_coverage_accounts
from platforms.sandbox.process import SandboxInfo
from platforms.services import register_sandbox_platforms

info = SandboxInfo(process=None, **json.loads(os.environ["LAYOUT_SANDBOX"]))
platforms = register_sandbox_platforms(info)
register_sandbox_coverage_accounts(info, platforms)
user = get_user_model().objects.create_user(
    "ops", password=os.environ["LAYOUT_PASSWORD"], is_staff=True)
user.groups.add(Group.objects.get(name="finance"))
for platform in platforms:
    PlatformAccess.objects.create(user=user, platform=platform)
print(json.dumps([platform.pk for platform in platforms]))
