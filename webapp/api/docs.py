"""/api/openapi.json and a readable page drawn from it on the server (no script, so the CSP holds as it is)."""
from __future__ import annotations

from flask import current_app, jsonify, render_template
from flask_babel import lazy_gettext as _l

from webapp.api import docs_bp, spec
from webapp.api.problems import TITLES
from webapp.extensions import limiter


@docs_bp.get("/api/openapi.json")
@limiter.exempt
def openapi():
    response = jsonify(spec.document(current_app))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# What each problem means, in the page's language (the API itself answers in English: its titles are data).
PROBLEMS = (
    ("not-found", 404, _l("No such thing, or not yours (someone else's hold, order or entry is not found either).")),
    ("invalid-request", 400, _l("A request the rules refuse: the detail says which rule, in the pages' words.")),
    ("seats-taken", 409, _l("Seats just taken: taken_seats lists each one's id and label; "
                         "the rest can be reserved again.")),
    ("not-enough-left", 409, _l("Too few places in a tier: left says how many; waitlist_open is true when it is "
                             "sold out and the waiting list can be joined.")),
    ("limit-exceeded", 400, _l("More tickets than one order may hold.")),
    ("sales-closed", 409, _l("Not on sale (not open yet, closed, past the sale end, or cancelled).")),
    ("pass-required", 403, _l("The event's waiting room is on and this request has no current pass of the token's "
                           "account (send Waiting-Room-Pass): the detail says whether it was missing, forged, another "
                           "account's or event's, or out of time.")),
    ("access-code-needed", 403, _l("A hidden tier asked for without an access code that unlocks it now.")),
    ("hold-expired", 410, _l("The hold ran out and its seats are gone.")),
    ("hold-not-active", 409, _l("The hold was released or paid.")),
    ("payment-declined", 402, _l("The card was declined: decline_code says why; the hold stays.")),
    ("payment-in-progress", 409,
     _l("A payment for this hold is already running (another request, same or other key).")),
    ("order-not-cancellable", 409, _l("Already cancelled, or the event has started.")),
    ("waitlist-closed", 409, _l("This event has no waiting list.")),
    ("change-refused", 409, _l("An admin change that would break what is sold, or a status move that is not allowed.")),
    ("booking-error", 409, _l("Any other refusal: the detail says why.")),
    ("already-in-line", 409, _l("Already on this event's waiting list.")),
    ("not-sold-out", 409, _l("Tickets are still available: book them directly.")),
    ("no-offer", 409, _l("No live offer to accept.")),
    ("check-in-refused", 409, _l("Not admitted: outcome says why (404 for an unknown code).")),
    ("invalid-fields", 400, _l("Input that does not fit: errors maps each field to its messages.")),
    ("token-refused", 401, _l("No token, or an unknown or revoked one.")),
    ("busy", 503, _l("The database did not answer in time: try again after Retry-After.")),
)


@docs_bp.get("/api/docs")
@limiter.exempt
def docs():
    document = spec.document(current_app)
    return render_template("api/docs.html", doc=document, problems=PROBLEMS, titles=TITLES)
