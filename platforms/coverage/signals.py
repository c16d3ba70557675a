"""Signal receivers of coverage: the navigation's cached "may view net exposure" answer
(``selectors.may_view_exposure_cached``) is dropped whenever the user, their roles or a role
change, and computed afresh at login. :func:`connect` is called by ``PlatformsConfig.ready()``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_save, pre_delete

from platforms.coverage.selectors import may_view_exposure_cached, nav_answer_key


def _forget_nav_answers(user_pks) -> None:
    cache.delete_many([nav_answer_key(pk) for pk in user_pks])


def _user_saved(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    """Staff or superuser status may have changed: the nav's cached answer is stale (not on
    the login's own ``last_login`` save)."""
    if not raw and not (update_fields and set(update_fields) <= {"last_login"}):
        _forget_nav_answers([instance.pk])


def _roles_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """A user joined or left a role (either side of ``User.groups``)."""
    if sender is not Group.user_set.through or action not in (
            "post_add", "post_remove", "pre_clear", "post_clear"):
        return
    if isinstance(instance, Group):
        pks = pk_set if pk_set is not None else instance.user_set.values_list("pk", flat=True)
    else:
        pks = [instance.pk]
    _forget_nav_answers(list(pks or []))


def _role_deleted(sender, instance: Group, **kwargs) -> None:
    _forget_nav_answers(list(instance.user_set.values_list("pk", flat=True)))


def _logged_in(sender, request, user, **kwargs) -> None:
    """Answer at login (one query then) rather than on a page's first render."""
    _forget_nav_answers([user.pk])
    may_view_exposure_cached(user)


def connect() -> None:
    post_save.connect(_user_saved, sender=settings.AUTH_USER_MODEL,
                      dispatch_uid="coverage-nav-user")
    m2m_changed.connect(_roles_changed, dispatch_uid="coverage-nav-groups")
    pre_delete.connect(_role_deleted, sender=Group, dispatch_uid="coverage-nav-group-deleted")
    user_logged_in.connect(_logged_in, dispatch_uid="coverage-nav-login")
