"""The public JSON API, `/api/v1`, over the same services as the pages.

Views here parse JSON, call the service function the HTML view calls, and
dump the result through a marshmallow schema; refusals are the services'
own errors, answered as problem details (`problems.py`). Every operation
is declared with `routing.operation`, which also feeds the OpenAPI
document (`spec.py`), so the document cannot drift from the routes.

Requests authenticate with a personal token (`Authorization: Bearer …`);
the session cookie is never read, so there is no CSRF to defend against.
"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)
admin_bp = Blueprint("admin", __name__)
docs_bp = Blueprint("api_docs", __name__)

from webapp.api import admin, buyer, docs, routing  # noqa: E402,F401

bp.register_blueprint(admin_bp, url_prefix="/admin")


@admin_bp.teardown_request
def leave_the_organiser(_error: BaseException | None) -> None:
    # The token check scoped the session to the token's organiser (organiser_guard.admit).
    from webapp.extensions import db
    from webapp.services import organiser_scope

    organiser_scope.leave(db.session)
routing.register_hooks(bp, admin_bp)
