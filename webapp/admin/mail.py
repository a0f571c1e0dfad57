"""Admin: the outbox's delivery state, with the messages that failed for good and why."""
from __future__ import annotations

from flask import flash, render_template, url_for
from flask_babel import gettext
from sqlalchemy import case, func, select

from webapp.admin import bp
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.models import OutboxMessage
from webapp.services.errors import NotFound
from webapp.services.messaging import delivery

SHOWN = 100


@bp.get("/mail")
def mail_status():
    failed = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.failed_at.is_not(None), OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.failed_at.desc()).limit(SHOWN)
    ).all()
    retrying = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
                                    OutboxMessage.attempts > 0)
        .order_by(OutboxMessage.next_attempt_at).limit(SHOWN)
    ).all()
    state = case((OutboxMessage.sent_at.is_not(None), "sent"), (OutboxMessage.failed_at.is_not(None), "failed"),
                 else_="waiting")
    counts = dict(db.session.execute(select(state, func.count()).group_by(state)).all())
    return render_template("admin/mail.html", failed=failed, retrying=retrying, counts=counts)


@bp.post("/mail/<int:message_id>/retry")
def mail_retry(message_id: int):
    try:
        delivery.retry_now(db.session, message_id)
    except NotFound:
        db.session.rollback()
        flash(gettext("That message was sent already or does not exist."), "error")
        return redirect_to(url_for("admin.mail_status"))
    flash(gettext("Message %(id)s will be tried again on the worker's next pass.", id=message_id), "success")
    return redirect_to(url_for("admin.mail_status"))
