from flask import Blueprint

bp = Blueprint("checkout", __name__)

from webapp.checkout import views  # noqa: E402,F401
