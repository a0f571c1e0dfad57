"""Reading the app's pages the way a browser does: elements by id, forms and their fields.

The load tools find every URL they follow in the HTML (a form's action, an
htmx element's `hx-get` and `hx-headers`, a reserve answer's `HX-Redirect`),
so they keep working while the app's routes and markup change.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    attrs: dict[str, str | None]
    fields: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)

    @property
    def action(self) -> str:
        return self.attrs.get("action") or ""

    def values(self) -> list[tuple[str, str]]:
        """What submitting the form unchanged sends (no submit button, checked boxes only)."""
        sent = []
        for tag, a in self.fields:
            name = a.get("name")
            if not name or "disabled" in a:
                continue
            kind = (a.get("type") or "text").lower()
            if tag == "button" or kind in ("submit", "button", "reset", "image"):
                continue
            if kind in ("checkbox", "radio") and "checked" not in a:
                continue
            sent.append((name, a.get("value") or ""))
        return sent

    def inputs(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.fields if a.get("name") == name]


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, dict[str, str | None]] = {}
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: dict | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.setdefault(a["id"], a)
        if tag == "form":
            self._form = Form(a)
            self.forms.append(self._form)
        elif tag in ("input", "button", "textarea") and self._form is not None:
            self._form.fields.append((tag, a))
        elif tag == "select" and self._form is not None:
            self._select = {"name": a.get("name"), "first": None, "chosen": None}
        elif tag == "option" and self._select is not None:
            value = a.get("value") or ""
            if self._select["first"] is None:
                self._select["first"] = value
            if "selected" in a:
                self._select["chosen"] = value

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None and self._form is not None:
            chosen = self._select["chosen"] if self._select["chosen"] is not None else self._select["first"]
            self._form.fields.append(("select", {"name": self._select["name"], "value": chosen or ""}))
            self._select = None

    def element(self, id_: str) -> dict[str, str | None]:
        if id_ not in self.ids:
            raise LookupError(f"no element with id {id_!r} on the page")
        return self.ids[id_]

    def form(self, id_: str) -> Form:
        for form in self.forms:
            if form.attrs.get("id") == id_:
                return form
        raise LookupError(f"no form with id {id_!r} on the page")

    def hx_headers(self, id_: str) -> dict[str, str]:
        raw = self.element(id_).get("hx-headers")
        return json.loads(raw) if raw else {}
