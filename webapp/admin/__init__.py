"""Event management for admins. Every route is guarded by `admin_required`."""
from flask import Blueprint

bp = Blueprint("admin", __name__)

from webapp.admin import views  # noqa: E402,F401
from webapp.admin import devmail, mail  # noqa: E402,F401
