from flask import Blueprint

bp = Blueprint("shop", __name__)

from webapp.shop import language, seat_list, views, waiting_room  # noqa: E402,F401
