"""The ticket shop: an app factory, as in the Flask tutorial."""
from __future__ import annotations

import os
from typing import Any

from flask import Flask

from config import Config, database_url_from_env


def create_app(overrides: dict[str, Any] | None = None, config_class: type = Config) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config_class)
    # Read at creation, not import: a launcher may set them after importing config.
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config.get("SQLALCHEMY_DATABASE_URI") or database_url_from_env()
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or os.environ.get("SECRET_KEY")
    if overrides:
        app.config.update(overrides)
    if not app.config.get("SQLALCHEMY_DATABASE_URI") and not app.config.get("TESTING"):
        from webapp import devenv

        if devenv.is_dev_checkout():
            app.config.update({k: v for k, v in devenv.configure().items() if not app.config.get(k)})
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        raise RuntimeError("DATABASE_URL is not set: PostgreSQL is the only database this app runs on.")
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set.")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app.config)

    from webapp import logs, overload, parsing

    logs.configure(app)
    # First of the before-request hooks: a request over its queue budget is
    # refused before anything else runs for it.
    overload.register(app)
    parsing.register(app)
    _register_extensions(app)
    _register_blueprints(app)
    _limit_only_decorated_views(app)

    from webapp.shop import waiting_room_now

    # The waiting room's shared state is answered in front of Flask (no
    # session, CSRF, user or database per poll); inside ProxyFix, so it
    # sees the scheme the buyer used.
    waiting_room_now.install(app)

    if app.config.get("PROXY_FIX_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only as many X-Forwarded-* entries as there are proxies we run: the
        # rest are the client's to forge, and rate limits key on the address.
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    from webapp import cli, database, errors, i18n, metrics, security, templating, unit_of_work
    from webapp.services.money import gateways

    gateways.init_app(app)
    metrics.meter_gateway(app)
    metrics.register(app)
    # Wrapped by the retry below: a view run again on a fresh connection is
    # committed once, after its second run.
    unit_of_work.register(app)
    database.retry_on_stale_connection(app)
    security.register(app)
    errors.register(app)
    i18n.init_app(app)
    templating.register(app)
    cli.register(app)
    return app


def startup_options(config: dict[str, Any]) -> str:
    """The timeouts as `-c` settings: a lock wait or runaway statement fails fast and becomes a 503."""
    return (
        f"-c lock_timeout={config['DB_LOCK_TIMEOUT_MS']}"
        f" -c statement_timeout={config['DB_STATEMENT_TIMEOUT_MS']}"
        f" -c idle_in_transaction_session_timeout=60000"
    )


def _engine_options(config: dict[str, Any]) -> dict[str, Any]:
    # Timeouts at connection level cost no extra round trip per transaction.
    # PgBouncer in transaction mode refuses startup options (and one server
    # connection serves many clients): there the same values are the
    # database role's own settings (deploy/cluster/roles.sql), and the app
    # sends none (DB_STARTUP_OPTIONS=0).
    connect_args: dict[str, Any] = {"application_name": "tickets", "connect_timeout": 5}
    if config["DB_STARTUP_OPTIONS"]:
        connect_args["options"] = startup_options(config)
    return {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        # No pre-ping: it cost a round trip on every checkout (about one
        # statement in eight on the buy path). A connection found dead is
        # invalidated with the rest of its pool and the view runs once more
        # on a fresh one (webapp/database.py), so a restart costs no request.
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        "pool_timeout": 10,
        # A host that does not answer must become a 503 quickly, not a hang.
        "connect_args": connect_args,
    }


def _register_extensions(app: Flask) -> None:
    from flask_login import current_user

    from webapp.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    csrf.init_app(app)
    limiter.init_app(app)
    # Without Flask-Login's context processor, which loads the user for every
    # template rendered, whether it shows them or not (a statement on each
    # partial and poll): templates get the lazy proxy, loaded on first use.
    login_manager.init_app(app, add_context_processor=False)
    app.context_processor(lambda: {"current_user": current_user})
    login_manager.login_view = "auth.login_get"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    # "basic" protection hashes the client's address and user agent on every
    # request only to mark a session "not fresh", which nothing here uses
    # (there is no fresh_login_required); logout and revocation are handled
    # by the session itself.
    login_manager.session_protection = None

    from flask_login import user_logged_in

    from webapp import session_user

    app.session_interface = session_user.SigningOnce()
    # No query per request: the user comes from the signed session cookie.
    login_manager.user_loader(session_user.load)
    user_logged_in.connect(lambda sender, user, **extra: session_user.remember(user), app, weak=False)


def _limit_only_decorated_views(app: Flask) -> None:
    """Run Flask-Limiter's before-request pass only where it can find a limit.

    With no default or application limits, that pass finds limits only on
    the blueprints given one (the API's), yet it resolved the endpoint's
    limits and exemptions on every request: about a third of a bare
    request's CPU. The other limits are all `@limiter.limit` decorators,
    which check on their own. So the pass runs for a request of a limited
    blueprint (or one nested in it), as before, and is skipped for the rest.
    Configuring a default or application limit keeps it for every request.
    """
    from flask import request

    from webapp.extensions import limiter

    manager = limiter.limit_manager
    if (app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION")
            or manager._default_limits or manager._application_limits):
        return
    hooks = app.before_request_funcs.get(None, [])
    passes = [hook for hook in hooks if getattr(hook, "__self__", None) is limiter]
    if not passes:
        return

    def check_limited_blueprints() -> None:
        # Read at each request: a limit given to a blueprint later still counts.
        limited = limiter.limit_manager._blueprint_limits
        blueprint = request.blueprint
        if blueprint and (blueprint in limited or any(name in limited for name in blueprint.split("."))):
            for check in passes:
                check()

    app.before_request_funcs[None] = [check_limited_blueprints if hook is passes[0] else hook
                                      for hook in hooks if hook not in passes[1:]]


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _register_blueprints(app: Flask) -> None:
    from webapp.account import bp as account_bp
    from webapp.admin import bp as admin_bp
    from webapp.api import bp as api_bp
    from webapp.api import docs_bp as api_docs_bp
    from webapp.auth import bp as auth_bp
    from webapp.checkout import bp as checkout_bp
    from webapp.door import bp as door_bp
    from webapp.health import bp as health_bp
    from webapp.shop import bp as shop_bp
    from webapp.stripe_webhook import bp as stripe_webhook_bp
    from webapp.waitlist import bp as waitlist_bp

    app.register_blueprint(shop_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(checkout_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(waitlist_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(door_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(api_docs_bp)
    app.register_blueprint(stripe_webhook_bp)
    # Stripe signs its calls; it has no session and no CSRF token.
    from webapp.extensions import csrf

    csrf.exempt(stripe_webhook_bp)
