"""Settings, read from the environment.

`Config` is production; `TestConfig` shortens holds and turns off rate limits
unless a test asks for them. Every value can be overridden through
`create_app(overrides)`.
"""
from __future__ import annotations

import os


def database_url_from_env() -> str | None:
    """The DATABASE_URL, rewritten for psycopg2.

    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which we do not
    ship; Heroku-style `postgres://` is accepted too.
    """
    url = os.environ.get("DATABASE_URL")
    return normalise_database_url(url) if url else None


def normalise_database_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url_from_env()
    # Pool sized per worker: a gthread worker needs at most one connection per
    # thread, plus one for the occasional streaming export.
    DB_POOL_SIZE = _int("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = _int("DB_MAX_OVERFLOW", 5)
    # Overload must turn into a quick, clear 503, never a pile-up of waiters.
    DB_LOCK_TIMEOUT_MS = _int("DB_LOCK_TIMEOUT_MS", 3000)
    DB_STATEMENT_TIMEOUT_MS = _int("DB_STATEMENT_TIMEOUT_MS", 10000)
    # 0 behind PgBouncer in transaction mode: the timeouts above are then the
    # database role's settings (README, "A cluster"), not sent at connect.
    DB_STARTUP_OPTIONS = os.environ.get("DB_STARTUP_OPTIONS", "1") == "1"
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # Rate limits: Redis when REDIS_URL is set, so that limits hold across
    # every worker and host; per-process memory otherwise (development only).
    RATELIMIT_STORAGE_URI = os.environ.get("REDIS_URL", "worker-memory://")
    RATELIMIT_ENABLED = os.environ.get("RATELIMIT_ENABLED", "1") == "1"
    RATELIMIT_HEADERS_ENABLED = True
    # Redis away: each process counts on its own until Redis answers again (Flask-Limiter checks it
    # every so often), rather than every limited request failing. A limit is a guard, never a
    # reason to turn buyers away.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "5 per minute")
    RESERVE_RATE_LIMIT = os.environ.get("RESERVE_RATE_LIMIT", "30 per minute")
    # A seated venue with more seats than this opens on an overview of its
    # sections and shows seats one section at a time (page size, see docs/performance.md).
    LARGE_VENUE_SEATS = _int("LARGE_VENUE_SEATS", 3000)
    # The API, per token (or per address without one).
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "120 per minute")
    # Origins whose pages may call the API from a browser (comma-separated); none by default.
    API_CORS_ORIGINS = tuple(o.strip() for o in os.environ.get("API_CORS_ORIGINS", "").split(",") if o.strip())
    # Webhooks (docs/api.md, "Webhooks"): hosts allowed even when they are loopback or
    # private, and over plain http (comma-separated host or host:port; tests only).
    WEBHOOK_ALLOWED_HOSTS = tuple(h.strip() for h in os.environ.get("WEBHOOK_ALLOWED_HOSTS", "").split(",")
                                  if h.strip())
    WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
    WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 10)
    WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "30"))
    WEBHOOK_LEASE_SECONDS = _int("WEBHOOK_LEASE_SECONDS", 120)
    # The sign-up form's inline checks, per client address.
    REGISTER_CHECK_RATE_LIMIT = os.environ.get("REGISTER_CHECK_RATE_LIMIT", "30 per minute")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # The container entrypoint turns it on unless told otherwise (see
    # launcher.serve); development and tests run over plain http.
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    # A form body larger than this is refused with 413 before it is parsed.
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 64 * 1024)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    # A session ends after this long without a request, and this long after login at most.
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 60)
    SESSION_ABSOLUTE_HOURS = _int("SESSION_ABSOLUTE_HOURS", 12)

    # A payment still "pending" after this long is settled by asking the
    # gateway, so a crash between authorisation and order never loses one.
    PAYMENT_RECONCILE_AFTER_SECONDS = _int("PAYMENT_RECONCILE_AFTER_SECONDS", 60)
    # A payment the gateway still has no record of is waited for this long,
    # then its key is voided (nothing can be charged under it after that).
    PAYMENT_VOID_AFTER_SECONDS = _int("PAYMENT_VOID_AFTER_SECONDS", 300)
    GATEWAY_SLOW_SECONDS = float(os.environ.get("GATEWAY_SLOW_SECONDS", "4"))
    # The language when neither the buyer nor their browser names one we speak (webapp/i18n.py).
    DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "en")
    # Which payment gateway: "simulated" (the default, test cards) or "stripe" (docs/design.md, "Stripe").
    PAYMENT_GATEWAY = os.environ.get("PAYMENT_GATEWAY", "simulated")
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    # Seconds to connect, and to wait for an answer, on each call to Stripe.
    STRIPE_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_CONNECT_TIMEOUT_SECONDS", "3"))
    STRIPE_READ_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_READ_TIMEOUT_SECONDS", "20"))
    # A webhook whose signed time is further than this from ours is refused (replays).
    STRIPE_WEBHOOK_TOLERANCE_SECONDS = _int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)

    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    TESTING = False

    # Mail (README: "Mail in production"). SMTP_URL is smtp:// (plain, or STARTTLS when the
    # server offers it and ?starttls=1), smtp+starttls:// (STARTTLS required)
    # or smtps:// (TLS from the first byte), with user:password@ if needed.
    SMTP_URL = os.environ.get("SMTP_URL")
    MAIL_FROM = os.environ.get("MAIL_FROM", "Ticketbooth <tickets@localhost>")
    SMTP_TIMEOUT_SECONDS = float(os.environ.get("SMTP_TIMEOUT_SECONDS", "30"))
    # Delivery retries: the n-th failure waits MAIL_RETRY_BASE_SECONDS * 2**(n-1),
    # capped at an hour; after MAIL_MAX_ATTEMPTS the message is failed for good.
    MAIL_MAX_ATTEMPTS = _int("MAIL_MAX_ATTEMPTS", 8)
    MAIL_RETRY_BASE_SECONDS = float(os.environ.get("MAIL_RETRY_BASE_SECONDS", "30"))
    # How long a worker owns a message it took before another may retry it
    # (a worker that died mid-send): longer than one SMTP conversation.
    MAIL_LEASE_SECONDS = _int("MAIL_LEASE_SECONDS", 300)
    # Development only: where ./run-app's SMTP catcher writes what it receives;
    # when set, admins get a page listing those messages.
    DEV_MAIL_DIR = os.environ.get("DEV_MAIL_DIR")

    # Wallet passes (services/messaging/wallet.py): offered only when every setting of one kind is set.
    APPLE_PASS_CERT = os.environ.get("APPLE_PASS_CERT")  # PEM files: the pass type's certificate and key,
    APPLE_PASS_KEY = os.environ.get("APPLE_PASS_KEY")
    APPLE_PASS_KEY_PASSWORD = os.environ.get("APPLE_PASS_KEY_PASSWORD")
    APPLE_WWDR_CERT = os.environ.get("APPLE_WWDR_CERT")  # and Apple's WWDR intermediate certificate
    APPLE_PASS_TYPE_ID = os.environ.get("APPLE_PASS_TYPE_ID")
    APPLE_TEAM_ID = os.environ.get("APPLE_TEAM_ID")
    GOOGLE_WALLET_SERVICE_ACCOUNT = os.environ.get("GOOGLE_WALLET_SERVICE_ACCOUNT")  # the JSON key file
    GOOGLE_WALLET_ISSUER_ID = os.environ.get("GOOGLE_WALLET_ISSUER_ID")

    # Every absolute link (mails, calendar files, PDFs) starts with this.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000")
    # How many reverse proxies in front of the app set X-Forwarded-*; 0 trusts none.
    PROXY_FIX_HOPS = _int("PROXY_FIX_HOPS", 0)
    # Whether an event's limit of tickets per client address counts requests from loopback
    # (webapp/client_address.py): off, since there they come from a local proxy, a test or a benchmark.
    ADDRESS_LIMIT_ON_LOOPBACK = os.environ.get("ADDRESS_LIMIT_ON_LOOPBACK", "0") == "1"

    PASSWORD_RESET_MAX_AGE_SECONDS = _int("PASSWORD_RESET_MAX_AGE_SECONDS", 3600)
    EMAIL_VERIFY_MAX_AGE_SECONDS = _int("EMAIL_VERIFY_MAX_AGE_SECONDS", 7 * 24 * 3600)
    # How long an invitation to an organiser's team works.
    INVITATION_MAX_AGE_SECONDS = _int("INVITATION_MAX_AGE_SECONDS", 3 * 24 * 3600)
    # Per client address, and separately per e-mail address asked about.
    RESET_RATE_LIMIT = os.environ.get("RESET_RATE_LIMIT", "5 per 15 minutes")
    RESET_PER_ADDRESS_RATE_LIMIT = os.environ.get("RESET_PER_ADDRESS_RATE_LIMIT", "3 per hour")
    # Discount and access codes that could not be used, per account and per client address
    # (webapp/wrong_codes.py); right codes count nothing.
    WRONG_CODE_RATE_LIMIT = os.environ.get("WRONG_CODE_RATE_LIMIT", "10 per 10 minutes")
    WRONG_CODE_PER_ADDRESS_RATE_LIMIT = os.environ.get("WRONG_CODE_PER_ADDRESS_RATE_LIMIT", "30 per 10 minutes")


    # The waiting room (docs/design.md, "The waiting room"). A poll runs the admission
    # pass itself when none has run for this long (the sweep normally does).
    WAITING_ROOM_LAZY_PASS_SECONDS = float(os.environ.get("WAITING_ROOM_LAZY_PASS_SECONDS", "1"))
    WAITING_ROOM_POLL_SECONDS = _int("WAITING_ROOM_POLL_SECONDS", 5)
    # Proof-of-work challenges a client address may fetch for the join form (each costs the server a key
    # derivation); the places it may take are the room's own rule.
    WAITING_ROOM_CHALLENGE_RATE_LIMIT = os.environ.get("WAITING_ROOM_CHALLENGE_RATE_LIMIT", "30 per minute")
    # A request that waited longer than this in the server's queue (from the
    # proxy's X-Request-Start) is answered 503 + Retry-After; 0 turns it off.
    QUEUE_BUDGET_MS = _int("QUEUE_BUDGET_MS", 0)
    # The shop's queueing delay (from the same header) a waiting room keeps under by letting fewer in at
    # once (waiting_room/outflow.py); 0 turns it off and the rooms' rules alone decide.
    WAITING_ROOM_SHOP_DELAY_MS = _int("WAITING_ROOM_SHOP_DELAY_MS", 0)
    # `/metrics` (Prometheus) answers only with `Authorization: Bearer <this>`; unset, it does not exist.
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN")


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"
    RATELIMIT_ENABLED = False
    RATELIMIT_STORAGE_URI = "worker-memory://"
    WTF_CSRF_ENABLED = True
    GATEWAY_SLOW_SECONDS = 1.0
    PAYMENT_RECONCILE_AFTER_SECONDS = 5
    LOG_LEVEL = "WARNING"
    PUBLIC_URL = "http://tickets.test"
    MAIL_FROM = "Ticketbooth <tickets@tickets.test>"
    SMTP_TIMEOUT_SECONDS = 5.0
    MAIL_RETRY_BASE_SECONDS = 0.0
    WEBHOOK_RETRY_BASE_SECONDS = 0.0
