"""Settings, read from the environment in this one place.

Embedded defaults need no server (SQLite under ``var/``, Celery over kombu's filesystem
transport, the in-memory channel layer). ``DATABASE_URL`` switches to PostgreSQL and
``REDIS_URL`` switches Celery, the cache and the channel layer to Redis. With
``DJANGO_ENV=production`` the secret key and the field-encryption keys must come from the
environment; in the demo they are generated once and kept under ``var/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="demo")
if DJANGO_ENV not in {"demo", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'demo' or 'production'")
VAR_DIR = Path(env.str("DASHBOARD_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _demo_secrets() -> dict[str, str]:
    """Secrets the demo generates on first start and keeps (mode 0600) under ``var/``."""
    path = VAR_DIR / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    generated = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(generated, fh)
    return generated


def _secret(name: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DJANGO_ENV == "production":
        raise ImproperlyConfigured(f"{name} must be set when DJANGO_ENV=production")
    try:
        return _demo_secrets()[name]
    except FileExistsError:  # another process generated them a moment ago
        return _demo_secrets()[name]


SECRET_KEY = _secret("DJANGO_SECRET_KEY")
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation without downtime).
FIELD_ENCRYPTION_KEYS = [k.strip() for k in _secret("FIELD_ENCRYPTION_KEYS").split(",") if k]

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "channels",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    "platforms",
    "dashboard",
]

MIDDLEWARE = [
    "dashboard.metrics.http.RequestLatencyMiddleware",  # first: times every answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "dashboard.middleware.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.middleware.RequireTwoFactorMiddleware",  # its redirects carry the headers above
    "dashboard.middleware.InteractiveReadsMiddleware",  # a page's live reads share a deadline
    "axes.middleware.AxesMiddleware",  # last, as axes asks: it turns a lockout into its page
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "dashboard.context_processors.environment",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: submit's statement (the trading pipeline's hottest) runs as a server-side prepared
# statement; Django binds client-side and never prepares. psycopg prepares nothing unless the
# connection has a threshold: one that no statement reaches prepares only what asks to be.
# Switch off behind a pooler in transaction mode that cannot carry them (PgBouncer < 1.21).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery, channel layer --------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")


def redis_channel_layer(url: str, **config) -> dict:
    """channels_redis on ``url``: the one definition the settings and the tests' layer share.
    Known defect, not fixed yet: a consumer waits in blocking reads of 5 s and redis-py 8 times a
    socket read out after 5 s, so a socket that hears nothing for 5 s can die (the page's socket
    reconnects). Both fixes tried — a longer read timeout, and 2 s blocking reads — left the
    receive task of a refused socket running after cancellation (the suite's loop never closed):
    today the read timeout is what ends that task, so it stays until that leak is understood.
    """
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [url], **config},
    }


if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "dashboard.cache.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    # File-based so that the web server and the worker processes see the same entries.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env.str("DASHBOARD_CACHE_DIR", default=str(VAR_DIR / "cache")),
            # Django's default (300 entries, then a third culled at random) dropped entries that
            # must live their TTL (coverage snapshots, drain marks) once sign-ins filled it.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Pages' live reads (platforms.transport.interactive) ---------------------------------------
#: Seconds a page may spend on live platform reads in all (sent as ``X-Request-Timeout``; no
#: retry after a timeout); past it the page shows stored data. Workers keep their deadlines.
DASHBOARD_INTERACTIVE_TIMEOUT = env.float("DASHBOARD_INTERACTIVE_TIMEOUT", default=3.0)

# --- Realtime (live margins, trades, quotes over Channels) -------------------------------------
# "in-process": the upstream bridge starts inside the ASGI process on first WebSocket (demo,
# in-memory layer); "external": `manage.py stream` runs it (production, Redis layer).
REALTIME_BRIDGE = env.str("REALTIME_BRIDGE", default="external" if REDIS_URL else "in-process")
REALTIME_MAX_FRAMES_PER_SECOND = env.int("REALTIME_MAX_FRAMES_PER_SECOND", default=4)
REALTIME_BRIDGE_FLUSH_SECONDS = env.float("REALTIME_BRIDGE_FLUSH_SECONDS", default=0.1)
REALTIME_MARGINS_REFRESH_SECONDS = env.float("REALTIME_MARGINS_REFRESH_SECONDS", default=5.0)
REALTIME_SERVER_TIMEOUT_SECONDS = env.float("REALTIME_SERVER_TIMEOUT_SECONDS", default=30.0)
REALTIME_RECONNECT_MAX_SECONDS = env.float("REALTIME_RECONNECT_MAX_SECONDS", default=30.0)
REALTIME_SCOPE_RECHECK_SECONDS = env.float("REALTIME_SCOPE_RECHECK_SECONDS", default=5.0)

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # The broadcast/control exchange (worker pings, revokes), kept under var/ too: kombu's
        # default is a ``control/`` folder in the working directory.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
    # stops and acks promptly
    CELERY_BROKER_TRANSPORT = "dashboard.celery_transport:FilesystemTransport"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves it for the next worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection before and after every task unless this
# is set: a fresh PostgreSQL connection (a server process) per task. Workers instead recycle
# connections Django's way (`dashboard.celery`: CONN_MAX_AGE and health checks per task).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1_000_000)
# The `trading` queue is I/O-bound (one platform call and a few small queries per task): a
# thread pool serves it with far less CPU per task than forked processes, and more tasks can
# wait on the platform at once. Used for the trading worker by `manage.py demo` and the bench;
# other queues keep Celery's default (prefork) pool.
CELERY_TRADING_WORKER_POOL = env.str("CELERY_TRADING_WORKER_POOL", default="threads")
CELERY_TRADING_WORKER_CONCURRENCY = env.int("CELERY_TRADING_WORKER_CONCURRENCY", default=16)
# Threads one drain sends a batch's calls from (`platforms.trading.drain.drain`). A money call
# costs the worker about as much CPU as the platform takes to answer it on a LAN, so a few
# threads keep the platform busy; past about twice the cores, threads only queue for the GIL
# (16 cost twice the CPU per task of 4 on two cores). Raise it for a platform far away.
TRADING_DRAIN_SENDERS = env.int("TRADING_DRAIN_SENDERS", default=4)
# Drains of one platform that may run at once, at most one per worker process: one worker
# process is bound by its GIL, so a platform's money flow grows with trading worker processes
# (one per core) up to this many. More slots than processes cost nothing.
TRADING_DRAINS_PER_PLATFORM = env.int("TRADING_DRAINS_PER_PLATFORM", default=4)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "platforms.tasks.snapshot_*": {"queue": "reporting"},
    "platforms.tasks.sync_*": {"queue": "reporting"},
    "platforms.tasks.report_*": {"queue": "reporting"},
    "platforms.tasks.execute_*": {"queue": "trading"},
    "platforms.tasks.reconcile_*": {"queue": "trading"},
    "platforms.trading.tasks.*": {"queue": "trading"},
    "platforms.coverage.tasks.*": {"queue": "reporting"},
    "platforms.server_tasks.*": {"queue": "reporting"},
}
# No "quotes" queue: no task is routed to one (a worker on it would wait for nothing).
CELERY_WORKER_QUEUES = ["default", "trading", "reporting"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

# --- Auth, i18n, static ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

def _plotly_assets() -> str:
    """Plotly's JS ships inside the plotly wheel: served from there, never from a CDN (found
    without importing plotly, which settings never need)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ImproperlyConfigured("plotly (a dependency) is not installed")
    return str(Path(spec.origin).parent / "package_data")


STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", _plotly_assets())]
# collectstatic's target in production (every web host runs `manage.py release` or ships it)
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # the demo serves assets straight from installed packages

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads it from the hx-headers attribute, not the cookie
CSRF_FAILURE_VIEW = "dashboard.views.errors.csrf_failure"  # in the frame, not a bare page
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if DJANGO_ENV == "production":
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # HTTPS only, and browsers told to remember it. Behind a TLS-terminating proxy that
    # redirects by itself, DJANGO_SSL_REDIRECT=false; DJANGO_HSTS_SECONDS=0 turns HSTS off.
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=True)
    # monitoring and Prometheus may probe over plain HTTP inside the network
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # DJANGO_TLS=off: production served over plain HTTP, for CI and a loopback-only trial
    # (docs/deploy.md). No redirect, no HSTS, cookies without Secure, and the deployment check's
    # four TLS warnings silenced so that `manage.py release` passes; never on a public address.
    DJANGO_TLS = env.str("DJANGO_TLS", default="on")
    if DJANGO_TLS not in {"on", "off"}:
        raise ImproperlyConfigured("DJANGO_TLS must be 'on' or 'off'")
    if DJANGO_TLS == "off":
        SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = False
        SECURE_HSTS_SECONDS = 0
        SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012",
                                  "security.W016"]
    # Static files come from collectstatic's output only (`manage.py release`): names carry a
    # content hash (cached for a year by browsers) and gzip/brotli copies sit beside them.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {
            "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    WHITENOISE_USE_FINDERS = False

# --- Staff login hardening: throttling, 2FA, idle expiry (README: "Signing in") -------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out user or address first
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins are counted per username and, separately, per client address: either reaching
# the limit locks that username (from everywhere) or that address (for every username).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env.int("DASHBOARD_LOGIN_FAILURE_LIMIT", default=5)
# Minutes a lockout lasts; 0 keeps it until an admin unlocks (README: "Unlocking a user").
_lockout_minutes = env.int("DASHBOARD_LOGIN_LOCKOUT_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=_lockout_minutes) if _lockout_minutes else None
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dashboard.login_security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "dashboard.login_security.client_ip"
# Proxies in front of the dashboard that append to X-Forwarded-For (0: REMOTE_ADDR is the client).
DASHBOARD_TRUSTED_PROXY_COUNT = env.int("DASHBOARD_TRUSTED_PROXY_COUNT", default=0)
# TOTP for every staff login, and for the admin site (which can also be asked for on its own).
DASHBOARD_REQUIRE_2FA = env.bool("DASHBOARD_REQUIRE_2FA", default=DJANGO_ENV == "production")
DASHBOARD_ADMIN_REQUIRE_2FA = env.bool("DASHBOARD_ADMIN_REQUIRE_2FA",
                                       default=DASHBOARD_REQUIRE_2FA)
OTP_TOTP_ISSUER = env.str("DASHBOARD_OTP_ISSUER", default="Broker back office")
# The admin lists and deletes devices but never shows a user's key or QR code: whoever could
# read it could produce that user's codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# A session ends after this many seconds without the user doing anything (background polls and
# the live socket do not count: `dashboard.middleware.IdleSessionMiddleware`).
SESSION_COOKIE_AGE = env.int("DASHBOARD_SESSION_IDLE_SECONDS", default=30 * 60)
# How often an open live socket checks that its session still exists: it closes within this long
# of the session's end (`dashboard.middleware.SessionEndSocketMiddleware`).
DASHBOARD_SOCKET_SESSION_CHECK_SECONDS = env.float("DASHBOARD_SOCKET_SESSION_CHECK_SECONDS",
                                                   default=30.0)

# --- Security headers ---------------------------------------------------------------------------
# Everything from our own origin; no inline script, no eval. Styles: Plotly adds <style> rules
# and style attributes to the charts it draws, so style-src alone allows 'unsafe-inline'
# (README: "Security headers").
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media",
        "fullscreen", "geolocation", "gyroscope", "magnetometer", "microphone", "midi",
        "payment", "publickey-credentials-get", "screen-wake-lock", "usb", "xr-spatial-tracking",
    )
}

# --- Manager API client ---------------------------------------------------------------------------
MANAGER_API = {
    # Connection pool per platform; the HTTP timeout is always the server deadline + 30 s.
    "MAX_CONNECTIONS": env.int("MANAGER_API_MAX_CONNECTIONS", default=20),
    "BREAKER_FAIL_MAX": env.int("MANAGER_API_BREAKER_FAIL_MAX", default=5),
    "BREAKER_RESET_SECONDS": env.float("MANAGER_API_BREAKER_RESET_SECONDS", default=30.0),
}

# --- Logging: secrets never reach a log line --------------------------------------------------
# DJANGO_LOG_FORMAT=json: one JSON object per line (python-json-logger) for a log shipper; the
# redaction filter runs before either formatter.
DJANGO_LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="plain")
if DJANGO_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT must be 'plain' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "platforms.redaction.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": DJANGO_LOG_FORMAT,
                    "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Metrics and error reports (docs/deploy.md: "Metrics") ----------------------------------------
# /metrics answers a client inside one of these networks (CIDRs) or one that sends
# "Authorization: Bearer $METRICS_TOKEN"; anyone else gets 403. Neither set: refused to all.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
try:
    import ipaddress

    for _network in METRICS_ALLOWED_NETWORKS:
        ipaddress.ip_network(_network, strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from exc

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from dashboard.error_reports import init_sentry

    init_sentry(SENTRY_DSN, environment=DJANGO_ENV,
                traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0))

# --- Broker scale (issue 24) ------------------------------------------------------------------
#: A list counts its filtered rows up to this many and says "more than …" beyond (a
#: ``COUNT(*)`` over a million rows is a full scan on every new filter).
LIST_COUNT_BOUND = env.int("LIST_COUNT_BOUND", default=10_000)
#: A full snapshot of a platform of more accounts than this (or three times as many open
#: trades) reads cursor pages instead of the one-shot sidecar answers, so a worker's memory
#: stays bounded whatever the platform's size (``platforms.mirror.sources``).
SNAPSHOT_ONE_SHOT_MAX = env.int("SNAPSHOT_ONE_SHOT_MAX", default=200_000)
#: Full and history snapshot runs at once across all platforms (0: no limit). Set it to the
#: reporting workers less one, and a platform's full load never holds every worker while
#: another's incremental waits: a long run past the limit is sent again after
#: ``SNAPSHOT_DEFER_SECONDS`` (``platforms.mirror.runs.long_run_slot_free``).
SNAPSHOT_MAX_LONG_RUNS = env.int("SNAPSHOT_MAX_LONG_RUNS", default=0)
SNAPSHOT_DEFER_SECONDS = env.int("SNAPSHOT_DEFER_SECONDS", default=20)
#: TTL of a platform's bridge lock in Redis: a ``stream`` process that dies leaves its
#: platforms to another within about this long (renewed every third of it).
REALTIME_BRIDGE_LOCK_SECONDS = env.float("REALTIME_BRIDGE_LOCK_SECONDS", default=15.0)
