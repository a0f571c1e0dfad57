from flask import Blueprint

bp = Blueprint("shop", __name__)

from webapp.shop import views, waiting_room  # noqa: E402,F401
