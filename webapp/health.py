"""`/healthz`: the app answers and its database does too."""
from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.database import RETRY_AFTER
from webapp.extensions import db, limiter

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz():
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError:
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass  # the connection is already gone; the pool replaces it
        return jsonify(status="error", database="unreachable"), 503, {"Retry-After": str(RETRY_AFTER)}
    return jsonify(status="ok", database="ok")
