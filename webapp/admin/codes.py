"""Admin: an event's discount and access codes: list with uses and revenue, create, edit, switch off, bulk batches.

A bulk batch answers with its CSV at once (the codes are new and random, the
admin wants them in a mail merge) and can be downloaded again by name later.
Turning a code off or on swaps its row in place with htmx; without JS the
same buttons post and come back to the list.
"""
from __future__ import annotations

import re

from flask import flash, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp.admin import bp, load_event
from webapp.admin.forms import BulkCodeForm, CodeForm
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to
from webapp.models import Code, Event
from webapp.services.admin import codes
from webapp.services.errors import BookingError, InvalidRequest, NotFound
from webapp.services.selling.codes import terms


def _page(event: Event, *, form: CodeForm | None = None, bulk: BulkCodeForm | None = None, status: int = 200):
    batch = request.args.get("batch", "")[:80]
    stats = codes.code_stats(db.session, event.id)
    batches: dict[str, int] = {}
    for line in stats:
        if line.code.batch:
            batches[line.code.batch] = batches.get(line.code.batch, 0) + 1
    shown = [line for line in stats if line.code.batch == batch] if batch else stats
    return render_template(
        "admin/codes.html", event=event, lines=shown, all_count=len(stats), batch=batch,
        batches=sorted(batches.items()), tier_names={t.id: t.name for t in event.tiers},
        hidden_tiers=[t for t in event.tiers if t.hidden], terms=terms,
        form=form or CodeForm(formdata=None, event=event, meta={"csrf": False}),
        bulk=bulk or BulkCodeForm(formdata=None, event=event, prefix="bulk", meta={"csrf": False}),
    ), status


# The request is CSRF-checked by CSRFProtect; the forms' own token would clash on a page with two of them.
def _form(event: Event, **kwargs) -> CodeForm:
    return CodeForm(request.form, event=event, meta={"csrf": False}, **kwargs)


@bp.get("/events/<int:event_id>/codes")
def codes_page(event_id: int):
    return _page(load_event(event_id))


@bp.post("/events/<int:event_id>/codes")
def code_create(event_id: int):
    event = load_event(event_id)
    form = _form(event)
    if not form.validate():
        return _page(event, form=form, status=400)
    try:
        code = codes.create_code(db.session, event_id=event.id, raw_code=form.code.data, spec=form.spec(),
                                 actor_id=current_user.id)
    except BookingError as refused:
        db.session.rollback()
        form.refuse(refused.message)
        return _page(load_event(event_id), form=form, status=refused.status_code)
    flash(gettext("Code %(code)s created: %(terms)s.", code=code.code, terms=_terms(event, code)), "success")
    return redirect_to(url_for("admin.codes_page", event_id=event.id))


@bp.post("/events/<int:event_id>/codes/generate")
def codes_generate(event_id: int):
    event = load_event(event_id)
    form = BulkCodeForm(request.form, event=event, prefix="bulk", meta={"csrf": False})
    if not form.validate():
        return _page(event, bulk=form, status=400)
    try:
        made = codes.generate_codes(db.session, event_id=event.id, prefix=form.prefix.data or "",
                                    count=form.count.data, spec=form.spec(), actor_id=current_user.id,
                                    batch=form.batch.data)
    except BookingError as refused:
        db.session.rollback()
        form.refuse(refused.message)
        return _page(load_event(event_id), bulk=form, status=refused.status_code)
    flash(ngettext("%(num)d code generated as the batch “%(batch)s”; download it again from the list.",
                   "%(num)d codes generated as the batch “%(batch)s”; download it again from the list.",
                   len(made), batch=made[0].batch),
          "success")
    return _csv(event, made[0].batch or "", made)


@bp.get("/events/<int:event_id>/codes.csv")
def codes_csv(event_id: int):
    event = load_event(event_id)
    batch = request.args.get("batch", "").strip()[:80]
    if not batch:
        raise InvalidRequest(gettext("Say which batch to download, e.g. codes.csv?batch=newsletter."))
    rows = codes.batch_codes(db.session, event_id=event.id, batch=batch)
    if not rows:
        raise NotFound(gettext("This event has no batch of codes called “%(batch)s”.", batch=batch))
    return _csv(event, batch, rows)


def _csv(event: Event, batch: str, rows: list[Code]) -> Response:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", batch).strip("-") or "batch"
    return Response(codes.bulk_csv(rows), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="codes-{event.id}-{name}.csv"', "Cache-Control": "no-store"})


@bp.get("/events/<int:event_id>/codes/<int:code_id>")
def code_edit(event_id: int, code_id: int):
    event = load_event(event_id)
    code = codes.get_code(db.session, event_id=event.id, code_id=code_id)
    form = CodeForm(formdata=None, event=event, fixed_kind=code.kind, with_code=False, meta={"csrf": False})
    form.show_code(code)
    return _edit_page(event, code, form)


@bp.post("/events/<int:event_id>/codes/<int:code_id>")
def code_update(event_id: int, code_id: int):
    event = load_event(event_id)
    code = codes.get_code(db.session, event_id=event.id, code_id=code_id)
    form = _form(event, fixed_kind=code.kind, with_code=False)
    status = 400
    if form.validate():
        try:
            codes.update_code(db.session, event_id=event.id, code_id=code.id, spec=form.spec(),
                              actor_id=current_user.id)
            flash(gettext("Code %(code)s saved.", code=code.code), "success")
            return redirect_to(url_for("admin.codes_page", event_id=event.id))
        except BookingError as refused:
            db.session.rollback()
            form.refuse(refused.message)
            status = refused.status_code
    code = codes.get_code(db.session, event_id=event_id, code_id=code_id)
    return _edit_page(load_event(event_id), code, form, status)


@bp.post("/events/<int:event_id>/codes/<int:code_id>/active")
def code_set_active(event_id: int, code_id: int):
    event = load_event(event_id)
    active = request.form.get("active") == "1"
    code = codes.set_active(db.session, event_id=event.id, code_id=code_id, active=active,
                            actor_id=current_user.id)
    # Committed before the figures are read: buyers applying this code wait on its row lock.
    db.session.commit()
    message = (gettext("Code %(code)s is active again.", code=code.code) if active
               else gettext("Code %(code)s is switched off: buyers can no longer use it.", code=code.code))
    if is_partial_request():
        line = next(line for line in codes.code_stats(db.session, event.id) if line.code.id == code.id)
        return render_template("admin/_code_row.html", event=event, line=line,
                               tier_names={t.id: t.name for t in event.tiers}, terms=terms, notice=message)
    flash(message, "success")
    return redirect_to(url_for("admin.codes_page", event_id=event.id))


def _edit_page(event: Event, code: Code, form: CodeForm, status: int = 200):
    return render_template("admin/code_edit.html", event=event, code=code, form=form,
                           hidden_tiers=[t for t in event.tiers if t.hidden]), status


def _terms(event: Event, code: Code) -> str:
    currency = event.tiers[0].currency if event.tiers else "EUR"
    return terms(code.percent_off, code.amount_off_minor, currency)
