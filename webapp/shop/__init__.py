from flask import Blueprint

bp = Blueprint("shop", __name__)

from webapp.shop import line, views  # noqa: E402,F401
