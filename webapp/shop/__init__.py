from flask import Blueprint

bp = Blueprint("shop", __name__)

from webapp.shop import seat_list, views, waiting_room  # noqa: E402,F401
