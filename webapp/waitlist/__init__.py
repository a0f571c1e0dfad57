"""The buyer's side of the waiting list: join, see your place, answer offers."""
from flask import Blueprint

bp = Blueprint("waitlist", __name__)

from webapp.waitlist import views  # noqa: E402,F401
