"""The door: a phone page for the members whose role checks in, for the events their membership covers.

Platform administrators may use it for any event. Everyone else gets 404, as in the admin area: one guard for
the whole area (`organiser_guard.admit_door`), before any view.
"""
from flask import Blueprint, request
from flask_login import current_user

from webapp import organiser_guard
from webapp.admin.words import say

bp = Blueprint("door", __name__)


@bp.before_request
def door_members_only() -> None:
    organiser_guard.admit_door(current_user, request.view_args or {})
@bp.context_processor
def staff_words() -> dict:
    return {"say": say}


from webapp.door import views  # noqa: E402,F401
