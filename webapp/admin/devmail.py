"""Admin, development only: the messages ./run-app's SMTP catcher received, with attachments.

Present only when `DEV_MAIL_DIR` is set (the dev stack sets it); elsewhere
every URL here is a 404. The catcher writes `.eml` files; this page parses
them with the standard library, so what it shows is what went over SMTP.
"""
from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import abort, current_app, make_response, render_template

from webapp.admin import bp

SHOWN = 200
_NAME = re.compile(r"^[0-9A-Za-z-]+\.eml$")


def _folder() -> Path:
    folder = current_app.config.get("DEV_MAIL_DIR")
    if not folder:
        abort(404)
    return Path(folder)


def _load(name: str) -> EmailMessage:
    path = _folder() / name
    if not _NAME.match(name) or not path.is_file():
        abort(404)
    with path.open("rb") as f:
        return BytesParser(policy=policy.default).parse(f)


def _attachments(message: EmailMessage) -> list[dict]:
    return [
        {"index": i, "filename": part.get_filename() or f"part-{i}", "type": part.get_content_type(),
         "size": len(part.get_payload(decode=True) or b"")}
        for i, part in enumerate(message.iter_attachments())
    ]


@bp.get("/dev/mail")
def dev_mail():
    folder = _folder()
    names = sorted((p.name for p in folder.glob("*.eml")), reverse=True)[:SHOWN] if folder.exists() else []
    rows = []
    for name in names:
        message = _load(name)
        rows.append({"name": name, "to": message["To"], "subject": message["Subject"], "date": message["Date"],
                     "attachments": _attachments(message)})
    return render_template("admin/dev_mail.html", rows=rows, folder=folder)


@bp.get("/dev/mail/<name>")
def dev_mail_message(name: str):
    message = _load(name)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return render_template(
        "admin/dev_mail_message.html", name=name, message=message, attachments=_attachments(message),
        text=text_part.get_content() if text_part else "", html=html_part.get_content() if html_part else None,
    )


@bp.get("/dev/mail/<name>/attachments/<int:index>")
def dev_mail_attachment(name: str, index: int):
    parts = list(_load(name).iter_attachments())
    if index >= len(parts):
        abort(404)
    part = parts[index]
    response = make_response(part.get_payload(decode=True) or b"")
    response.headers["Content-Type"] = part.get_content_type()
    filename = (part.get_filename() or f"part-{index}").replace('"', "")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
