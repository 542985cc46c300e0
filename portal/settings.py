"""Settings of the portal, all read from the environment (see .env.example for each variable)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or SECRET_KEY_FILE), or DEBUG=true for development.")
    SECRET_KEY = "development-only-key-not-for-production"  # noqa: S105
# Keys for encryption at rest (vendor secrets, token caches): base64url 32-byte keys, newest
# first; the first encrypts, all decrypt. `python manage.py rotate_encryption` re-encrypts.
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS", "")
if not ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("Set ENCRYPTION_KEYS (or ENCRYPTION_KEYS_FILE), or DEBUG=true for development.")
    ENCRYPTION_KEYS = ["ZGV2ZWxvcG1lbnQtb25seS1rZXktMzItYnl0ZXMhISE"]  # development only
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_NAME = env_str("SITE_NAME", "Teams Connect Portal")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    # Installed but not routed: portal sign-in is identity.views (its own ID-token checks).
    # tests/devcloud/test_allauth.py routes it to check devcloud against allauth.
    "allauth.socialaccount.providers.microsoft",
    "pgtrigger",
    # Lowest first: an app imports only the apps before it (and integrations/): tests/test_layers.py.
    "core",
    "tenants",
    "identity",
    "chat",
]

MIDDLEWARE = [
    # First: every request in its log context, with its id, in the access log and the metrics.
    "portal.observability.RequestObservability",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the one chosen with the switcher (its cookie), else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context.site",
            ],
        },
    },
]

# Database: PostgreSQL in production and in tests; an SQLite file under var/ when unset.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web and worker processes share the file. A transaction takes the write lock as it begins,
    # waiting its turn, rather than half-way, where SQLite refuses at once ("database is locked");
    # in WAL mode readers never wait for the writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # A test database in a file, not in memory: the tests' worker processes open it too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker, cache and channel layer.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "portal"),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "portal.channel_layer.WaitingRedisChannelLayer",
        "CONFIG": {
            # channels_redis waits for messages with a 5 s blocking pop: redis-py's default 5 s
            # socket timeout would cut it (and every idle websocket with it). Per process, at most
            # CHANNELS_REDIS_CONNECTIONS connections; more wait up to 10 s for one.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 30,
                    "max_connections": env_int("CHANNELS_REDIS_CONNECTIONS", 50),
                    "timeout": 10,
                }
            ],
            "prefix": env_str("CHANNELS_PREFIX", "portal:channels"),
        },
    }
}
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Tasks must finish (or be re-queued) well inside this; countdowns stay below it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# The Microsoft cloud. In production leave these at Microsoft's; on a machine without
# Microsoft they name devcloud (`python -m devcloud`) and the CA it created.
ENTRA_LOGIN_URL = env_str("ENTRA_LOGIN_URL", "https://login.microsoftonline.com").rstrip("/")
GRAPH_URL = env_str("GRAPH_URL", "https://graph.microsoft.com").rstrip("/")
MICROSOFT_CA_BUNDLE = env_str("MICROSOFT_CA_BUNDLE", "")
OUTBOUND_TIMEOUT = env_int("OUTBOUND_TIMEOUT", 10)
# ACS endpoints the portal will call when a vendor registers a connection string (host names
# or their parent domains): a registration can't make the portal call hosts of its own network.
ACS_ENDPOINT_DOMAINS = env_list("ACS_ENDPOINT_DOMAINS", "communication.azure.com")
# ACS tokens are reused until this long before they expire (the Calling SDK refreshes its
# token 10 minutes ahead, so keep this above 600).
ACS_TOKEN_MARGIN_SECONDS = env_int("ACS_TOKEN_MARGIN_SECONDS", 900)
# ACS allows 500 exchanges per 30 s per resource; stay under it with some room.
ACS_EXCHANGES_PER_30_SECONDS = env_int("ACS_EXCHANGES_PER_30_SECONDS", 450)
# How long a request may wait for its turn under that limit before it is told to retry.
ACS_EXCHANGE_MAX_WAIT_SECONDS = env_int("ACS_EXCHANGE_MAX_WAIT_SECONDS", 2)
# How long the calling page waits for the calling service before saying it can't be reached.
CALL_CONNECT_TIMEOUT_MS = env_int("CALL_CONNECT_TIMEOUT_MS", 20000)
# Graph's chat message limits per app are 20/s per tenant, 200/s across tenants and 1/s per
# chat; the sync stays a little under each (Redis token buckets shared by every worker).
GRAPH_CHAT_RPS_PER_TENANT = env_float("GRAPH_CHAT_RPS_PER_TENANT", 19)
GRAPH_CHAT_RPS_PER_APP = env_float("GRAPH_CHAT_RPS_PER_APP", 190)
GRAPH_CHAT_RPS_PER_CHAT = env_float("GRAPH_CHAT_RPS_PER_CHAT", 0.9)
# A sync waits at most this long for its turn under those limits, else it is re-queued.
GRAPH_MAX_WAIT_SECONDS = env_int("GRAPH_MAX_WAIT_SECONDS", 10)
# 429s in a row for one chat before the whole sync backs off and is re-queued.
GRAPH_MAX_THROTTLES_PER_CHAT = env_int("GRAPH_MAX_THROTTLES_PER_CHAT", 5)
# One sync per user at a time: its lock is renewed at every round trip and expires this long
# after the last one if its worker died.
CHAT_SYNC_LOCK_SECONDS = env_int("CHAT_SYNC_LOCK_SECONDS", 60)

# Change notifications: the portal's public https base URL, which Graph must reach (it POSTs to
# {URL}/graph/notifications/ and {URL}/graph/lifecycle/). Empty: no subscriptions, and the
# periodic resync alone keeps chats fresh.
GRAPH_NOTIFICATION_URL = env_str("GRAPH_NOTIFICATION_URL", "").rstrip("/")
if GRAPH_NOTIFICATION_URL and not GRAPH_NOTIFICATION_URL.startswith("https://"):
    raise ImproperlyConfigured(f"GRAPH_NOTIFICATION_URL={GRAPH_NOTIFICATION_URL!r}: Graph notifies https URLs only.")
# Lifetime of a chat message subscription; Graph allows up to 4320 minutes with a lifecycle URL.
GRAPH_SUBSCRIPTION_MINUTES = env_int("GRAPH_SUBSCRIPTION_MINUTES", 4200)
# A subscription is renewed when it would expire within this many minutes.
GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES = env_int("GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES", 720)
if not 0 < GRAPH_SUBSCRIPTION_MINUTES <= 4320:
    raise ImproperlyConfigured("GRAPH_SUBSCRIPTION_MINUTES must be between 1 and 4320 (Graph's limit).")
if not 0 < GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES < GRAPH_SUBSCRIPTION_MINUTES:
    raise ImproperlyConfigured(
        "GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES must be above 0 and below GRAPH_SUBSCRIPTION_MINUTES."
    )
# How many of a member's most recently active chats get a subscription.
GRAPH_SUBSCRIPTIONS_PER_MEMBER = env_int("GRAPH_SUBSCRIPTIONS_PER_MEMBER", 50)
# Beat: an incremental resync of every active member this often (catches missed notifications).
CHAT_RESYNC_SECONDS = env_int("CHAT_RESYNC_SECONDS", 300)
# Beat: a full resync (every chat's messages asked for) this often; it catches edits, which
# the chat list's last message preview does not show.
CHAT_FULL_RESYNC_SECONDS = env_int("CHAT_FULL_RESYNC_SECONDS", 3600)
# Members who signed in within this many days count as active (resynced periodically).
CHAT_ACTIVE_DAYS = env_int("CHAT_ACTIVE_DAYS", 14)

CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Consent revocation is never pushed: confirm every active tenant periodically.
    "confirm-active-tenants": {
        "task": "tenants.tasks.confirm_active_tenants",
        "schedule": float(env_int("TENANT_CONSENT_CHECK_SECONDS", 900)),
    },
    "resync-active-members": {
        "task": "chat.tasks.resync_active_members",
        "schedule": float(CHAT_RESYNC_SECONDS),
    },
    "full-resync-active-members": {
        "task": "chat.tasks.resync_active_members",
        "schedule": float(CHAT_FULL_RESYNC_SECONDS),
        "kwargs": {"full": True},
    },
    # Four looks within the renewal margin (at most hourly): a failed renewal has three more chances.
    "renew-graph-subscriptions": {
        "task": "chat.tasks.renew_subscriptions",
        "schedule": float(min(3600, GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES * 15)),
    },
    # Vendor registrations whose admin never came back from signing in: their secrets go.
    "purge-stale-registrations": {"task": "tenants.tasks.purge_stale_registrations", "schedule": 3600.0},
    # Disconnected tenants' subscriptions whose deletion a lost task left undone.
    "retry-subscription-removals": {"task": "chat.tasks.retry_subscription_removals", "schedule": 3600.0},
    # `manage.py healthcheck beat` checks that this ran within 3 minutes (a worker runs it); a
    # heartbeat not run within its minute is dropped rather than piling up while no worker runs.
    "heartbeat": {"task": "core.tasks.heartbeat", "schedule": 60.0, "options": {"expires": 60}},
}

AUTHENTICATION_BACKENDS = [
    # Loads the session's user with his tenant membership (one query); passwords for the admin.
    "identity.backends.MemberBackend",
    # Sessions opened before MemberBackend name these; they go on working.
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
SITE_ID = 1
LOGIN_URL = "home"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_USER_DISPLAY = "identity.adapters.user_display"
ACCOUNT_LOGOUT_ON_GET = False
# Accounts come from Entra ID only: no local sign-up or password sign-in.
SOCIALACCOUNT_ONLY = True
ACCOUNT_ADAPTER = "identity.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "identity.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = OUTBOUND_TIMEOUT
SOCIALACCOUNT_PROVIDERS = {
    "microsoft": {
        "SCOPE": ["openid", "profile", "offline_access", "User.Read"],
        "AUTH_PARAMS": {"prompt": "select_account"},
        "OAUTH_PKCE_ENABLED": True,
    }
}

CSRF_FAILURE_VIEW = "portal.views.csrf_failure"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Docker's healthcheck asks over plain HTTP from inside the container, past the TLS proxy; a
# Prometheus scraper on the host's network may too.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# English unless the person chose another language or the browser asks for one of LANGUAGES.
# Adding a language: README "Languages".
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Logs: one JSON object per line (json) or a line for a person (plain), on stderr; both carry
# the request or task id and the vendor, tenant, member and user ids (core.logs).
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logs.ContextFilter"}},
    "formatters": {
        "plain": {"()": "core.logs.PlainFormatter"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (DEBUG only) would print each record a second time.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # uvicorn's logs in the same format (its access log stays off: portal.access replaces it).
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
        # Never uvicorn's access log, whatever its options: it prints query strings (OAuth codes).
        # (Configuring "uvicorn" would otherwise make its child propagate to the root again.)
        "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
        # These libraries log request and response bodies at DEBUG, tokens included.
        "msal": {"level": "WARNING"},
        "azure": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}

# Metrics: GET /metrics with `Authorization: Bearer <METRICS_TOKEN>` (Prometheus text); without
# METRICS_TOKEN, /metrics is a 404. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client) adds up
# every process of the host that writes there (core.metrics).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# /healthz checks a Celery worker (a ping, at most every HEALTHZ_CELERY_CACHE_SECONDS per web
# process) and beat (its heartbeat, core.tasks.heartbeat, within 3 minutes) besides the database
# and Redis. Off where no worker runs by design.
HEALTHZ_CELERY = env_bool("HEALTHZ_CELERY", True)
HEALTHZ_CELERY_TIMEOUT = env_float("HEALTHZ_CELERY_TIMEOUT", 1.0)
HEALTHZ_CELERY_CACHE_SECONDS = env_float("HEALTHZ_CELERY_CACHE_SECONDS", 5.0)

# Error tracking: Sentry's SDK with its Django and Celery integrations, only when SENTRY_DSN is
# set; no body, cookie, query string or Authorization header is sent (core.sentry).
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    from core.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", ""), release=env_str("SENTRY_RELEASE", ""))
