"""Every write made through Django admin lands in the audit trail: one mixin, no opt-in per view.

``AuditedAdmin`` records, with before/after values (secrets only as ``<name>_changed``):

* the add and change forms (``save_model`` → ``save_related``, so many-to-many values such as a
  user's groups are the saved ones), including every inline formset's added, changed and
  deleted rows;
* the delete page (``delete_model``) and the changelist's "Delete selected" (``delete_queryset``,
  which Django calls without ``delete_model``);
* every other changelist action, by comparing the selected rows before and after it ran, unless
  the action is listed in ``audit_recorded_by`` because the service it calls records the write.

Admins that must not write at all say so with their permissions (``ReadOnlyAdmin``); the test
``tests/access/test_audit_trail.py`` walks the admin site and fails on any admin of a model
that can write without this mixin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction

from platforms import audit
from platforms.models import TradePlatform


@dataclass(frozen=True)
class AuditNames:
    """The audit actions of one model: ``<prefix>.<add|change|delete>``."""

    prefix: str
    add: str = "create"
    change: str = "change"
    delete: str = "delete"

    def of(self, verb: str) -> str:
        return f"{self.prefix}.{getattr(self, verb, verb)}"


def _label(obj: models.Model) -> str:
    """How a related row appears in before/after values: a permission by its codename (what a
    role can do), anything else as it prints."""
    if obj._meta.label == "auth.Permission":
        return f"{obj.content_type.app_label}.{obj.codename}"  # type: ignore[attr-defined]
    return str(obj)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Dates, decimals and UUIDs as text: the before/after columns are plain JSON."""
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def model_values(obj: models.Model, *, secrets: frozenset[str] = frozenset(),
                 exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An object's audited values: its editable fields, foreign keys and many-to-many as
    labels, secrets left out (``secret_flags`` says whether they changed)."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if (field.primary_key or not field.editable or field.name in secrets
                or field.name in exclude or getattr(field, "auto_now", False)
                or getattr(field, "auto_now_add", False)):
            continue
        if field.is_relation:
            related = getattr(obj, field.name)
            values[field.name] = None if related is None else _label(related)
        else:
            values[field.name] = field.value_from_object(obj)
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            if field.name not in exclude:
                values[field.name] = sorted(_label(r) for r in getattr(obj, field.name).all())
    return _jsonable(values)


def secret_flags(stored: models.Model | None, obj: models.Model,
                 secrets: frozenset[str]) -> dict[str, bool]:
    """``<name>_changed`` per secret field: proves a rotation without the value."""
    return {f"{name}_changed": stored is None or getattr(stored, name) != getattr(obj, name)
            for name in sorted(secrets)}


class AuditedAdmin:
    """Mix into a ``ModelAdmin`` (before it) so that every write it makes is audited.

    Override the ``audit_*`` hooks for a model's own target, platform or values; the default
    values are :func:`model_values` without ``audit_secrets``.
    """

    audit_names: AuditNames
    # write-only fields: the trail says whether they changed, never their value
    audit_secrets: frozenset[str] = frozenset(audit.SECRET_FIELDS)
    audit_exclude: frozenset[str] = frozenset()
    # actions whose service records the write itself (no second event)
    audit_recorded_by: frozenset[str] = frozenset()

    # --- hooks -------------------------------------------------------------------------------

    def audit_values(self, obj: Any) -> dict[str, Any]:
        return model_values(obj, secrets=self.audit_secrets, exclude=self.audit_exclude)

    def audit_target(self, obj: Any) -> str:
        return str(obj)[:200]

    def audit_platform(self, obj: models.Model) -> TradePlatform | None:
        if isinstance(obj, TradePlatform):
            return obj
        platform = getattr(obj, "platform", None)
        return platform if isinstance(platform, TradePlatform) else None

    def audit_deleted_values(self, obj: Any) -> dict[str, Any]:
        """What a delete removes: the values, plus anything it takes with it (override)."""
        return self.audit_values(obj)

    # --- recording ---------------------------------------------------------------------------

    def audit_record(self, request, verb: str, obj: models.Model, before: dict[str, Any],
                     after: dict[str, Any], **extra: Any) -> None:
        audit.record(actor=audit.Actor.of(request), action=self.audit_names.of(verb),
                     platform=self.audit_platform(obj), target=self.audit_target(obj),
                     before=before, after=after, **extra)

    def save_model(self, request, obj, form, change):
        stored = type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        # kept for save_related: the many-to-many values are saved after this method
        request._audit_pending = {
            "before": self.audit_values(stored) if stored is not None else {},
            "secrets": secret_flags(stored, obj, self.audit_secrets & _field_names(obj)),
        }
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        form.save_m2m()
        pending = getattr(request, "_audit_pending", {"before": {}, "secrets": {}})
        self.audit_record(request, "change" if change else "add", form.instance,
                          pending["before"], {**self.audit_values(form.instance),
                                              **pending["secrets"]})
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        inline = _audited_admin_of(self.admin_site, formset.model)
        stored = {obj.pk: obj for obj in formset.get_queryset()}
        before = {pk: inline.audit_values(obj) for pk, obj in stored.items()}
        for deleted in formset.deleted_forms:
            obj = deleted.instance
            if obj.pk in before:
                inline.audit_record(request, "delete", obj, before[obj.pk], {})
        instances = formset.save()
        for obj in instances:
            existed = obj.pk in before
            secrets = inline.audit_secrets & _field_names(obj)
            inline.audit_record(request, "change" if existed else "add", obj,
                                before.get(obj.pk, {}),
                                {**inline.audit_values(obj),
                                 **secret_flags(stored.get(obj.pk), obj, secrets)})

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(type(obj))):
            self.audit_record(request, "delete", obj, self.audit_deleted_values(obj), {})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        """The changelist's "Delete selected": Django calls this, not ``delete_model``."""
        with transaction.atomic(using=router.db_for_write(queryset.model)):
            for obj in queryset:
                self.audit_record(request, "delete", obj, self.audit_deleted_values(obj), {})
            super().delete_queryset(request, queryset)

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {name: (func if name == "delete_selected" or name in self.audit_recorded_by
                       else _audited_action(func, name), name, description)
                for name, (func, name, description) in actions.items()}


def _field_names(obj: models.Model) -> frozenset[str]:
    return frozenset(f.name for f in obj._meta.concrete_fields)


class _PlainAudit(AuditedAdmin):
    """Audit hooks for an inline's model that has no audited admin of its own."""

    def __init__(self, model: type[models.Model]) -> None:
        self.audit_names = AuditNames(model._meta.model_name or "object")


def _audited_admin_of(site: admin.AdminSite, model: type[models.Model]) -> AuditedAdmin:
    registered = site._registry.get(model)
    return registered if isinstance(registered, AuditedAdmin) else _PlainAudit(model)


def _audited_action(func: Callable, name: str) -> Callable:
    """A changelist action, recorded: per selected row whose values it changed, one
    ``<prefix>.<action>`` event with before/after; if it changed none (it ran something), one
    event naming the rows it ran on."""

    @wraps(func)
    def run(modeladmin: AuditedAdmin, request, queryset):
        model = queryset.model
        with transaction.atomic(using=router.db_for_write(model)):
            selected = list(queryset)
            before = {obj.pk: modeladmin.audit_values(obj) for obj in selected}
            response = func(modeladmin, request, queryset)
            after = {obj.pk: obj for obj in model._default_manager.filter(pk__in=before)}
            changed = 0
            for pk, values in before.items():
                now = after.get(pk)
                now_values = modeladmin.audit_values(now) if now is not None else {}
                if now_values != values and now is not None:
                    changed += 1
                    modeladmin.audit_record(request, name, now, values, now_values)
                elif now is None:  # the action deleted it: no link to a row that is gone
                    changed += 1
                    audit.record(actor=audit.Actor.of(request),
                                 action=modeladmin.audit_names.of(name),
                                 target=modeladmin.audit_target(_first(selected, pk)),
                                 before=values)
            if not changed and selected:
                audit.record(actor=audit.Actor.of(request), action=modeladmin.audit_names.of(name),
                             target=", ".join(modeladmin.audit_target(o) for o in selected)[:200],
                             after={"selected": [str(o.pk) for o in selected]})
        return response

    return run


def _first(objects: list[models.Model], pk: Any) -> models.Model:
    return next(o for o in objects if o.pk == pk)


def audit_registered(model: type[models.Model], names: AuditNames,
                     site: admin.AdminSite = admin.site, **hooks: Any) -> None:
    """Re-register another app's admin of ``model`` (django-celery-beat's schedules, OTP
    devices) with :class:`AuditedAdmin` mixed in; its pages and actions stay as they were."""
    registered = type(site._registry[model])
    site.unregister(model)
    site.register(model, type(registered.__name__, (AuditedAdmin, registered),
                              {"audit_names": names, "__module__": __name__, **hooks}))
