"""The door: a phone page for door staff to check tickets in, for the events they are assigned to.

Admins may use it for any event. Everyone else gets 404, as in the admin area.
"""
from flask import Blueprint

from webapp.admin.words import say

bp = Blueprint("door", __name__)


@bp.context_processor
def staff_words() -> dict:
    return {"say": say}


from webapp.door import views  # noqa: E402,F401
