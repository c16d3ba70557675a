"""Staff users for tests: one builder for every folder (role, platforms, group masks, extra
permissions), on :class:`tests.factories.StaffUserFactory` and :func:`tests.factories.grant`."""

from __future__ import annotations

from tests.factories import StaffUserFactory, grant


def make_staff(*platforms, role: str | None = None, username: str | None = None,
               masks: str = "", perms: tuple[str, ...] = (), **fields):
    """A staff user with access to ``platforms`` (inside ``masks``), in ``role``'s group, and
    holding the permissions named by codename in ``perms``.

    ``fields`` go to the factory (``is_superuser=True``, ``is_staff=False``); without
    ``username`` the factory's sequence names the user.
    """
    from django.contrib.auth.models import Permission

    if username is not None:
        fields["username"] = username
    user = grant(StaffUserFactory(**fields), *platforms, group_masks=masks, role=role)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user
