"""Admin: an event's waiting list, with live offers and their expiry; taking someone off the waiting list."""
from __future__ import annotations

from flask import flash, render_template, url_for
from flask_babel import gettext
from flask_login import current_user

from webapp.admin import bp, load_event
from webapp.extensions import db
from webapp.htmx import redirect_to
from webapp.services.admin import waitlist as admin_waitlist
from webapp.services.waiting import waitlist_read


@bp.get("/events/<int:event_id>/waitlist")
def waitlist(event_id: int):
    event = load_event(event_id)
    return render_template("admin/waitlist.html", event=event,
                           line=waitlist_read.entries_in_order(db.session, event.id),
                           ended=admin_waitlist.recently_ended(db.session, event.id))


@bp.post("/events/<int:event_id>/waitlist/<int:entry_id>/remove")
def waitlist_remove(event_id: int, entry_id: int):
    load_event(event_id)
    # An entry of another event is a NotFound (404) from the service.
    admin_waitlist.remove_entry(db.session, actor_id=current_user.id, event_id=event_id, entry_id=entry_id)
    flash(gettext("Entry #%(id)s was removed from the waiting list.", id=entry_id), "success")
    return redirect_to(url_for("admin.waitlist", event_id=event_id))
