from flask import Blueprint

bp = Blueprint("account", __name__)

from webapp.account import invitations, transfers, views, wallet  # noqa: E402,F401
