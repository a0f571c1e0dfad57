"""The waiting room's buyer pages: the waiting room page, its status, its shared state, join and leave.

The waiting room page (`/events/<id>/waiting-room`) shows a countdown
before the sale start, then the buyer's number and position, and when it
is their turn it sets their pass cookie and links to the tickets. While
they wait, the page does not ask the server about them: it polls the
room's shared state (`now.json`, public and cacheable, answered in front of
Flask by `waiting_room_now`) and works the position out from its own number
(waiting_room.js). It asks for its own status (`/status`, a conditional GET
whose ETag is the room's version, the place and the account) only when the
answer is its own: its number comes up, the sale starts, or it has no number
yet. The room selling out, admitting again, opening or closing it shows
from blocks its status drew hidden. Without JavaScript, reloading the page
shows the room's state and the position.

Who is where: a signed cookie per event names the place, its number once
given and, for a visitor without an account, the random token the place
belongs to. A logged-in buyer without the cookie (a second device) finds
their place by account on the page itself.
"""
from __future__ import annotations

import logging

from flask import abort, current_app, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField
from wtforms.validators import DataRequired, Email, Length

from webapp import session_user
from webapp.database import single_statement
from webapp.errors import error_response
from webapp.extensions import db, limiter
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.models import Event, User
from webapp.services.errors import SalesClosed
from webapp.services.messaging import links
from webapp.services.waiting import waiting_room
from webapp.shop import admission, bp
from webapp.shop.admission import load_public_event

log = logging.getLogger(__name__)


def _place() -> waiting_room.Place | None:
    return waiting_room.read_place(request.cookies.get(waiting_room.place_cookie_name(request.view_args["event_id"])))


def _owns(stand: waiting_room.Standing, user_id: int | None, place: waiting_room.Place | None) -> bool:
    if stand.entry_id is None:
        return False
    if stand.user_id is not None:
        return stand.user_id == user_id
    return place is not None and place.anon_token == stand.anon_token


def _as_seen(stand, user_id: int | None, place, endless: bool):
    """The standing as this visitor may see it: the endless wait's, or the room's without a place not theirs."""
    if endless and place is not None:
        return waiting_room.endless_standing(stand, place)
    if not _owns(stand, user_id, place):
        return waiting_room.standing_without_place(stand)
    return stand


def _tag(event_id: int, version: int, started: bool, entry_id: int | None, user_id: int | None) -> str:
    return f"wr{event_id}-v{version}-s{int(started)}-n{entry_id or 0}-u{user_id or 0}"


def _lazy_pass(event_id: int) -> None:
    # No pass ran for a while (the sweep is behind or not running): this
    # request runs one, as the shared state's refresh does. SKIP LOCKED
    # inside, so a crowd of requests costs one pass, and the rest skip it.
    waiting_room.admit(db.session, event_id)
    # Committed at once: the room is read again on a connection of its own, which must see this pass.
    db.session.commit()


def _status_response(event_id: int, stand: waiting_room.Standing, *, user_id: int | None, tag: str,
                     event: Event | None = None, endless: bool = False) -> Response:
    """The waiting room as this buyer stands in it; with their pass cookie when it is their turn.

    `user_id`: the buyer, checked against their session; `event`: the full
    page needs it (title, date), the poll's partial only the id; `endless`:
    a flagged client's endless wait (its position is drawn by the server).
    """
    admitted = stand.status == "admitted" and stand.user_id is not None and stand.user_id == user_id
    ctx = dict(event=event, event_id=event_id, stand=stand, admitted=admitted, logged_in=user_id is not None,
               poll_seconds=stand.poll_seconds(_poll_seconds()), tag=tag,
               max_poll_seconds=waiting_room.MAX_POLL_SECONDS, endless=endless)
    response = render("shop/waiting_room.html", "shop/_waiting_room_status.html", **ctx)
    if admitted and user_id is not None and stand.pass_until is not None and stand.entry_id is not None:
        token = waiting_room.make_pass(admission_id=stand.entry_id, user_id=user_id, event_id=event_id,
                                       until=stand.pass_until)
        response.set_cookie(waiting_room.pass_cookie_name(event_id), token, httponly=True, samesite="Lax",
                            secure=admission.secure_cookies(), path="/")
        if stand.turn_seen_at is None:
            # The buyer reached the shop: the room's window grows with such people only (outflow.py).
            waiting_room.pass_collected(stand.entry_id)
    return response


def _poll_seconds() -> int:
    return int(current_app.config["WAITING_ROOM_POLL_SECONDS"])


def _remember_place(response: Response, event_id: int, entry_id: int, token: str, number: int | None = None) -> None:
    response.set_cookie(waiting_room.place_cookie_name(event_id),
                        waiting_room.make_place(entry_id=entry_id, anon_token=token, number=number),
                        httponly=True, samesite="Lax", secure=admission.secure_cookies(), path="/",
                        max_age=7 * 24 * 3600)


@bp.get("/events/<int:event_id>/waiting-room")
def waiting_room_page(event_id: int):
    """The waiting page: countdown, then position; the pass when it is the buyer's turn."""
    event = load_public_event(event_id)
    room = waiting_room.room_for(db.session, event.id)
    if room is None or not room.enabled:
        return redirect_to(url_for("shop.event_page", event_id=event.id))
    place = _place()
    # A flagged client's endless wait, whoever is logged in: it names no place.
    endless = waiting_room.is_endless(place)
    user_id = current_user.id if current_user.is_authenticated else None
    entry_id = place.entry_id if place and not endless else None
    token = place.anon_token if place else ""
    if user_id is not None and not endless:
        token = ""
        if place and place.anon_token:
            # Waited anonymously, now logged in: the account takes the place.
            entry_id = waiting_room.claim(db.session, event.id, anon_token=place.anon_token, user_id=user_id)
        else:
            # By account, whatever the cookie says: a second device, or a
            # cookie left by someone else on a shared computer.
            mine = waiting_room.entry_of(db.session, event.id, user_id=user_id, anon_token=None)
            entry_id = mine.id if mine else None
    # Committed before the standing is read on a connection of its own, which must see a claimed place.
    db.session.commit()
    with single_statement() as connection:
        stand = waiting_room.standing(connection, event.id, entry_id)
    if stand is None:
        abort(404)
    stand = _as_seen(stand, user_id, place, endless)
    tag = _tag(event.id, stand.version, stand.started, stand.entry_id, user_id)
    response = _status_response(event.id, stand, user_id=user_id, tag=tag, event=event, endless=endless)
    if stand.entry_id is not None and not endless:
        _remember_place(response, event.id, stand.entry_id, token, stand.number)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/events/<int:event_id>/waiting-room/status")
@limiter.exempt
def waiting_room_status(event_id: int):
    """A buyer's own status in the waiting room: 304 while the room's version is unchanged.

    Asked by the page when what it shows changes (see the module docstring),
    and by pages drawn before the shared state existed. Loads nothing
    through the ORM: "unchanged" is one statement (the room's version, and
    the session version the cookie claims), "changed" one more (the room
    and the place by primary key; the position is arithmetic).
    """
    if not is_partial_request():
        return redirect_to(url_for("shop.waiting_room_page", event_id=event_id))
    place = _place()
    claim = session_user.claimed()
    with single_statement() as connection:
        room_tag = waiting_room.room_tag(connection, event_id, claim[0] if claim else None)
    if room_tag is None:
        abort(404)
    # A page whose number came up (?turn=, served by the shop's processes) was let in by a pass that ran:
    # it never runs the crowd's next one, which is the sweep's, or the crowd's own asks' to run.
    if room_tag.pass_due and "turn" not in request.args:
        _lazy_pass(event_id)
        with single_statement() as connection:
            room_tag = waiting_room.room_tag(connection, event_id, claim[0] if claim else None)
        assert room_tag is not None
    user_id = session_user.confirmed(claim, room_tag.session_version)
    entry_id = place.entry_id if place else None
    endless = waiting_room.is_endless(place)
    tag = _tag(event_id, room_tag.version, room_tag.started, entry_id, user_id)
    if request.if_none_match.contains_weak(tag):
        response = make_response("", 304)
    else:
        with single_statement() as connection:
            stand = waiting_room.standing(connection, event_id, None if endless else entry_id)
        if stand is None:
            abort(404)
        stand = _as_seen(stand, user_id, place, endless)
        response = _status_response(event_id, stand, user_id=user_id, tag=tag, endless=endless)
        if place is not None and stand.entry_id is not None and stand.number != place.number and not endless:
            # The number came: the cookie carries it from now on.
            _remember_place(response, event_id, stand.entry_id, place.anon_token, stand.number)
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(("HX-Request", "Cookie"))
    return response


@bp.get("/events/<int:event_id>/waiting-room/now.json")
@limiter.exempt
def waiting_room_now(event_id: int):
    """The room's shared state; `waiting_room_now` answers it in front of Flask, and this is its address."""
    return current_app.extensions["waiting_room_now"].response(event_id)


@bp.get("/events/<int:event_id>/waiting-room/draw/<int:file>.json")
@limiter.exempt
def waiting_room_draw(event_id: int, file: int):
    """One file of the draw's published numbers; answered in front of Flask, as now.json is."""
    return current_app.extensions["waiting_room_now"].response(event_id, file)


def _challenge_limit() -> str:
    return current_app.config["WAITING_ROOM_CHALLENGE_RATE_LIMIT"]


@bp.get("/events/<int:event_id>/waiting-room/challenge")
@limiter.limit(_challenge_limit)
def waiting_room_challenge(event_id: int):
    """The proof of work the join form's widget solves (JSON): signed, for this event, short-lived."""
    rules = waiting_room.rules(event_id)
    if rules is None:
        abort(404)
    response = jsonify(waiting_room.challenge_for(event_id, rules.difficulty))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/events/<int:event_id>/waiting-room/join")
def waiting_room_join(event_id: int):
    """Take a place in the waiting room: by account, or for a visitor by a fresh signed token.

    First the room's checks (the proof of work, the places per address, the
    place cookie): a flagged client is told why, or kept in an endless wait
    that answers as a join does. Then the crowd's first request proper: one
    statement in autocommit when the place is new (join_now checks the
    event, the room and the session itself); the ordinary road, with its
    clear refusals, otherwise. The page's form posts with htmx and gets the
    waiting room's status in place (one more statement: the room and the
    place), not a redirect to the whole page: a crowd arriving costs one
    request each, not two.
    """
    screening = waiting_room.screen_join(
        event_id, payload=request.form.get("altcha"), address=request.remote_addr,
        place_cookie=request.cookies.get(waiting_room.place_cookie_name(event_id)))
    if screening.endless_place is not None:
        endless = screening.endless_place
        return _joined(event_id, endless.entry_id, endless.anon_token, user_id=None, endless=endless)
    if screening.refusal is not None:
        refused = screening.refusal
        response = error_response(refused.status_code, refused.message, refused.retry_after)
        if screening.forget_place:
            response.delete_cookie(waiting_room.place_cookie_name(event_id), path="/")
        return response
    claim = session_user.claimed()
    place = _place()
    token = ""
    if claim is None:
        token = place.anon_token if place and place.anon_token else waiting_room.new_anon_token()
    user_id = claim[0] if claim else None  # the join's own statement checks the session
    session_version = claim[1] if claim else None
    stand: waiting_room.Standing | None = None
    if is_partial_request():
        # Posted by the page: the join's one statement also reads the standing its answer draws.
        stand = waiting_room.join_now_standing(event_id=event_id, user_id=user_id, session_version=session_version,
                                               anon_token=token or None)
        entry_id = stand.entry_id if stand is not None else None
    else:
        entry_id = waiting_room.join_now(event_id=event_id, user_id=user_id, session_version=session_version,
                                         anon_token=token or None)
    if entry_id is None:
        event = load_public_event(event_id)
        user_id = current_user.id if current_user.is_authenticated else None
        if user_id is None and claim is not None:
            # The cookie's session had ended: this visitor waits anonymously.
            token = place.anon_token if place and place.anon_token else waiting_room.new_anon_token()
        if not event.on_sale:
            raise SalesClosed()
        entry_id = waiting_room.join(db.session, event.id, user_id=user_id, anon_token=token or None)
    log.info("waiting_room.joined", extra={"event_id": event_id, "entry_id": entry_id})
    return _joined(event_id, entry_id, token, user_id=user_id, stand=stand)


def _joined(event_id: int, entry_id: int, token: str, *, user_id: int | None,
            endless: waiting_room.Place | None = None, stand: waiting_room.Standing | None = None) -> Response:
    """A join's answer, with the place's cookie: the status in place for htmx, else a redirect to the page.

    A flagged client's endless wait (`endless`) gets the same answer, drawn
    from the room alone, so nothing tells it apart from a place. `stand`:
    the standing the join's own statement read, if it did.
    """
    if not is_partial_request():
        response = redirect_to(url_for("shop.waiting_room_page", event_id=event_id))
        _remember_place(response, event_id, entry_id, token)
        return response
    if stand is None:
        with single_statement() as connection:
            stand = waiting_room.standing(connection, event_id, None if endless else entry_id)
    if stand is None:
        abort(404)
    if endless is not None:
        stand = waiting_room.endless_standing(stand, endless)
    response = _status_response(event_id, stand, user_id=user_id, endless=endless is not None,
                                tag=_tag(event_id, stand.version, stand.started, stand.entry_id, user_id))
    _remember_place(response, event_id, entry_id, token, None if endless else stand.number)
    return response


@bp.post("/events/<int:event_id>/waiting-room/leave")
def waiting_room_leave(event_id: int):
    """Give the place (or the turn) up: the next one waiting moves up."""
    event = load_public_event(event_id)
    user_id = current_user.id if current_user.is_authenticated else None
    place = _place()
    response = redirect_to(url_for("shop.waiting_room_page", event_id=event.id))
    if waiting_room.is_endless(place):
        # The endless wait has no place to give up: forgetting it is leaving (a new join is screened again).
        response.delete_cookie(waiting_room.place_cookie_name(event.id), path="/")
        return response
    entry = waiting_room.entry_of(db.session, event.id, user_id=user_id, anon_token=None) if user_id else None
    if entry is None and place:
        entry = waiting_room.entry_of(db.session, event.id, user_id=None, anon_token=place.anon_token)
    if entry is not None:
        waiting_room.leave(db.session, entry.id)
    response.delete_cookie(waiting_room.pass_cookie_name(event.id), path="/")
    return response


class MailMeForm(FlaskForm):
    email = EmailField(_l("E-mail me when it is my turn"), filters=[lambda v: v.strip() if isinstance(v, str) else v],
                       validators=[
        DataRequired(message=_l("Enter your e-mail address.")), Email(message=_l("Enter a valid e-mail address.")),
        Length(max=254)])


@bp.post("/events/<int:event_id>/waiting-room/mail")
def waiting_room_mail(event_id: int):
    """"E-mail me when it is my turn": the account's address, or the one a visitor gives.

    Answered in place (#waiting-room-mail) with htmx, else back to the page.
    A flagged client's endless wait is answered as anyone is, and nothing is
    kept: its place does not exist.
    """
    event = load_public_event(event_id)
    place = _place()
    user_id = current_user.id if current_user.is_authenticated else None
    form = MailMeForm()
    error, typed = None, (form.email.data or "").strip()
    email: str | None = typed if user_id is None else None  # an account: its own address
    if user_id is None and not form.validate():
        error = form.email.errors[0] if form.email.errors else _("Enter your e-mail address.")
    elif waiting_room.is_endless(place):
        if user_id is not None:
            email = db.session.get(User, user_id).email  # answered as a place would be, and nothing kept
    else:
        entry = waiting_room.entry_of(db.session, event.id, user_id=user_id, anon_token=None) if user_id else (
            waiting_room.entry_of(db.session, event.id, user_id=None, anon_token=place.anon_token)
            if place and place.anon_token else None)
        email = waiting_room.ask_for_mail(db.session, event.id, entry.id, email) if entry is not None else None
        if email is None:
            error = _("You have no place waiting in this waiting room, so there is nothing to mail you about.")
    if not is_partial_request():
        flash(error or _("We will e-mail %(email)s when it is your turn.", email=email or typed),
              "error" if error else "success")
        return redirect_to(url_for("shop.waiting_room_page", event_id=event.id))
    return render_template("shop/_waiting_room_mail.html", event_id=event.id, logged_in=user_id is not None,
                           mail_to=None if error else email or typed, mail_error=error, mail_typed=typed[:254]), (
        422 if error else 200)


@bp.get("/events/<int:event_id>/waiting-room/turn/<token>")
def waiting_room_turn(event_id: int, token: str):
    """The mailed link of a place whose turn came: opened on any device, it lets its owner in.

    Signed for one place of one room and valid until that admission ends
    (checked again by the database's clock). An account's place needs that
    account logged in (the page then gives its pass); a visitor's place is
    carried to this device in its place cookie, and logging in there binds
    it to the account, as in the room itself.
    """
    event = load_public_event(event_id)
    entry_id = links.read_turn_token(token[:300], event_id=event.id)
    entry = waiting_room.admitted_place(db.session, event.id, entry_id) if entry_id is not None else None
    if entry is None:
        return error_response(410, _("This link has run out: it lasted as long as your turn. You can take a new"
                                     " place in the waiting room."))
    if entry.user_id is not None:
        if not current_user.is_authenticated:
            return redirect_to(url_for("auth.login_get", next=request.path))
        if current_user.id != entry.user_id:
            return error_response(403, _("This link is for another account: log in with the account that took"
                                         " the place."))
    response = redirect_to(url_for("shop.waiting_room_page", event_id=event.id))
    _remember_place(response, event.id, entry.id, entry.anon_token or "", entry.number)
    log.info("waiting_room.turn_link", extra={"event_id": event.id, "entry_id": entry.id})
    return response


# The waiting room's URLs when it was called the line: links to them were
# mailed and shared. 308 rather than 301 so that a join or leave form, or
# a poll, from a page opened before the rename keeps its method and body.
_NEW_FOR_OLD = {"/events/<int:event_id>/line": "shop.waiting_room_page",
                "/events/<int:event_id>/line/status": "shop.waiting_room_status",
                "/events/<int:event_id>/line/join": "shop.waiting_room_join",
                "/events/<int:event_id>/line/leave": "shop.waiting_room_leave"}


@bp.get("/events/<int:event_id>/line")
@bp.get("/events/<int:event_id>/line/status")
@bp.post("/events/<int:event_id>/line/join")
@bp.post("/events/<int:event_id>/line/leave")
@limiter.exempt
def old_line_url(event_id: int):
    """A permanent redirect from an old waiting room URL to its new one, query and all."""
    target = url_for(_NEW_FOR_OLD[request.url_rule.rule], event_id=event_id)
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return redirect(target, code=308)
