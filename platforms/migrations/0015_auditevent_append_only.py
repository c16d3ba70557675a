"""PostgreSQL: a trigger makes the audit table append-only for every client, not only the ORM.

``UPDATE``, ``DELETE`` and ``TRUNCATE`` of ``platforms_auditevent`` raise (SQLSTATE 23001,
restrict_violation), with two exceptions:

* inside ``platforms.audit.maintenance()``, which sets ``audit.maintenance = 'on'`` for its own
  transaction: the retention command (after it has archived the rows to a file) and the test
  suite's flush between transactional tests;
* Django's ``on_delete=SET_NULL`` when a user or platform is deleted: an UPDATE that only sets
  ``actor_id``/``platform_id`` to NULL and changes nothing else. The trigger then copies the
  user's or platform's name into ``actor_name``/``platform_name`` if the row had none, so the
  trail still says who and where.

SQLite (development, tests): no trigger; the model and its queryset refuse the same writes.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations

FUNCTION = "platforms_auditevent_append_only"


def _create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    qn = schema_editor.connection.ops.quote_name
    events = qn(apps.get_model("platforms", "AuditEvent")._meta.db_table)
    platforms = qn(apps.get_model("platforms", "TradePlatform")._meta.db_table)
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    users = qn(user_model._meta.db_table)
    username = qn(user_model._meta.get_field(get_user_model().USERNAME_FIELD).column)
    user_pk = qn(user_model._meta.pk.column)
    schema_editor.execute(f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('audit.maintenance', true), '') = 'on' THEN
        IF TG_OP = 'UPDATE' THEN RETURN NEW; END IF;
        RETURN OLD;  -- DELETE; a statement trigger's (TRUNCATE) return value is ignored
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.actor_id IS NULL OR NEW.actor_id = OLD.actor_id)
           AND (NEW.platform_id IS NULL OR NEW.platform_id = OLD.platform_id)
           AND to_jsonb(NEW) - ARRAY['actor_id', 'platform_id']
               = to_jsonb(OLD) - ARRAY['actor_id', 'platform_id'] THEN
            -- a deleted user's or platform's link let go (on_delete=SET_NULL); the name stays
            IF OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL AND NEW.actor_name = '' THEN
                NEW.actor_name := coalesce(
                    (SELECT {username} FROM {users} WHERE {user_pk} = OLD.actor_id), '');
            END IF;
            IF OLD.platform_id IS NOT NULL AND NEW.platform_id IS NULL
               AND NEW.platform_name = '' THEN
                NEW.platform_name := coalesce(
                    (SELECT name FROM {platforms} WHERE id = OLD.platform_id), '');
            END IF;
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'manage.py archive_audit archives old events to a file, then removes them';
END
$$;
CREATE TRIGGER auditevent_append_only_rows BEFORE UPDATE OR DELETE ON {events}
    FOR EACH ROW EXECUTE FUNCTION {FUNCTION}();
CREATE TRIGGER auditevent_append_only_truncate BEFORE TRUNCATE ON {events}
    FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
""", params=None)  # no client-side % interpolation


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    events = schema_editor.connection.ops.quote_name(
        apps.get_model("platforms", "AuditEvent")._meta.db_table)
    schema_editor.execute(f"""
DROP TRIGGER IF EXISTS auditevent_append_only_truncate ON {events};
DROP TRIGGER IF EXISTS auditevent_append_only_rows ON {events};
DROP FUNCTION IF EXISTS {FUNCTION}();
""", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("platforms", "0014_auditevent_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(_create, _drop)]
