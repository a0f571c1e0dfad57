"""Join a sold-out event's waiting list, watch your place, accept or decline an offer.

Accepting is the normal checkout: an offer is a hold, paid on its hold page.
"""
from __future__ import annotations

import logging

from flask import abort, flash, make_response, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp import session_user
from webapp.database import single_statement
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.models import Event, EventStatus
from webapp.services.errors import InvalidRequest
from webapp.services.waiting import waitlist, waitlist_read
from webapp.waitlist import bp

log = logging.getLogger(__name__)


def load_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None or event.status == EventStatus.DRAFT:
        abort(404)
    return event


def _user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def panel_for(event: Event, tag: str | None = None) -> waitlist_read.BuyerPanel:
    return waitlist_read.buyer_panel(db.session, event, _user_id(), tag=tag)


@bp.app_context_processor
def waitlist_helpers():
    """`waitlist_offers()` for the offer banner on every page.

    A callable, so a page that does not show it costs no query.
    """
    def offers():
        if not current_user.is_authenticated:
            return []
        offers = getattr(current_user, "offers", None)  # read with the session check (session_user.load)
        if offers is not None:
            return offers
        # On every page: a statement of its own, so a page that reads
        # nothing else in a transaction pays no BEGIN/ROLLBACK for it.
        with single_statement() as connection:
            return waitlist_read.live_offers(connection, current_user.id)

    return {"waitlist_offers": offers}


def _unchanged(tag: str) -> Response | None:
    """304 for a poll whose page already shows this version: htmx keeps what is
    there, so focus and scroll stay put."""
    if is_partial_request() and request.if_none_match.contains_weak(tag):
        return _tagged(make_response("", 304), tag)
    return None


def _tagged(response: Response, tag: str) -> Response:
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(("HX-Request", "Cookie"))
    return response


@bp.get("/events/<int:event_id>/waitlist")
def panel(event_id: int):
    """The event's waiting list as the buyer sees it; polled while they wait."""
    # Every waiting buyer polls this: the answer "unchanged" costs one
    # statement in autocommit and loads nothing else.
    with single_statement() as connection:
        tag, _ = waitlist_read.watch_tag_for_claim(connection, event_id, session_user.claimed())
    if (same := _unchanged(tag)) is not None:
        return same
    event = load_event(event_id)
    page = render("waitlist/panel.html", "waitlist/_waitlist_panel.html", event=event, panel=panel_for(event, tag))
    return _tagged(page, tag)


def _parse_join(form) -> tuple[int | None, int]:
    tier_raw = form.get("tier", "any").strip()
    try:
        tier_id = None if tier_raw in ("", "any") else int(tier_raw)
        quantity = int(form.get("quantity", "1"))
    except ValueError:
        raise InvalidRequest(_("Choose a ticket type and a whole number of tickets.")) from None
    return tier_id, quantity


@bp.post("/events/<int:event_id>/waitlist")
@login_required
def join(event_id: int):
    event = load_event(event_id)
    tier_id, quantity = _parse_join(request.form)
    entry = waitlist.join(db.session, user_id=current_user.id, event_id=event.id, tier_id=tier_id, quantity=quantity)
    # Committed before the panel is drawn: the event's joins and releases queue on the line lock.
    db.session.commit()
    log.info("waitlist.joined", extra={"event_id": event.id, "user_id": current_user.id, "entry_id": entry.id,
                                        "quantity": quantity})
    if is_partial_request():
        return render("waitlist/panel.html", "waitlist/_waitlist_panel.html", event=event, panel=panel_for(event),
                      notice=_("You are on the waiting list."))
    flash(_("You are on the waiting list. We will hold tickets for you as soon as some come free."), "success")
    return redirect(url_for("shop.event_page", event_id=event.id), 303)


def _back(event_id: int):
    """Where a leave or decline returns to: the event, or the buyer's list."""
    if request.form.get("back") == "event":
        return redirect_to(url_for("shop.event_page", event_id=event_id))
    return redirect_to(url_for("waitlist.mine"))


@bp.post("/waitlist/<int:entry_id>/leave")
@login_required
def leave(entry_id: int):
    entry = waitlist.leave(db.session, entry_id=entry_id, user_id=current_user.id)
    log.info("waitlist.left", extra={"event_id": entry.event_id, "user_id": current_user.id, "entry_id": entry_id})
    flash(_("You have left the waiting list."), "info")
    return _back(entry.event_id)


@bp.post("/waitlist/<int:entry_id>/decline")
@login_required
def decline(entry_id: int):
    entry = waitlist.decline(db.session, entry_id=entry_id, user_id=current_user.id)
    log.info("waitlist.declined", extra={"event_id": entry.event_id, "user_id": current_user.id,
                                          "entry_id": entry_id})
    flash(_("You declined the offer; the tickets went to the next person in line."), "info")
    return _back(entry.event_id)


@bp.get("/waitlists")
@login_required
def mine():
    """The buyer's waiting lists: places, offers, and recent outcomes; polled while waiting."""
    entries = waitlist_read.my_entries(db.session, current_user.id)
    tag = waitlist_read.mine_tag(entries)
    if (same := _unchanged(tag)) is not None:
        return same
    return _tagged(render("waitlist/mine.html", "waitlist/_my_waitlists.html", entries=entries, live=tag), tag)
