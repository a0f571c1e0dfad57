"""What marking the door's verdict for translation costs: the partial the check-in answers with, rendered.

    .venv/bin/python -m tests.measure_door_verdict [--renders 2000] [--rounds 5]

The check-in's view and its one UPDATE did not change; the partial it renders
(door/_door_verdict.html) did. This renders the partial as it was before the
strings were marked (its text at the commit given, default the base of the
languages work) and as it is now in English, German and Spanish, on the same
verdict, and reports the CPU microseconds per render of each, the fastest of the
interleaved rounds (the host is shared). No database:
the verdict is built in memory.
"""
from __future__ import annotations

import argparse
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from webapp import create_app
from webapp.admin.words import say

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "webapp/templates/door/_door_verdict.html"


def verdict(outcome: str):
    order = SimpleNamespace(id=4711, user=SimpleNamespace(name="Greta Gast"), status=SimpleNamespace(value="cancelled"),
                            event=SimpleNamespace(title="Hafenkonzert", timezone="Europe/Berlin",
                                                  starts_at=datetime(2027, 5, 1, 18, 0, tzinfo=timezone.utc)))
    ticket = SimpleNamespace(order=order, tier=SimpleNamespace(name="Parkett"),
                             unit=SimpleNamespace(place_label="Parkett, row B, seat 12"))
    return dict(result=SimpleNamespace(outcome=outcome, ticket=ticket, code="ABC123",
                                       checked_in_at=datetime(2027, 5, 1, 18, 5, tzinfo=timezone.utc)),
                event=order.event, checked_in_by="Dora Door", tally=SimpleNamespace(checked_in=120, valid=800),
                say=say)


def per_render_us(app, template, language: str, context: dict, renders: int) -> float:
    with app.test_request_context("/", headers={"Cookie": f"tb_lang={language}"}):
        template.render(**context)  # the catalog loaded once, as a worker has it
        started = time.process_time()
        for _ in range(renders):
            template.render(**context)
        return (time.process_time() - started) / renders * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="215bb1a", help="the commit whose partial is 'before'")
    args = parser.parse_args()
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://unused/none", "SECRET_KEY": "measure"})
    old_text = subprocess.run(["git", "show", f"{args.before}:{TEMPLATE}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    with app.app_context():
        before = app.jinja_env.from_string(old_text)
        now = app.jinja_env.get_template("door/_door_verdict.html")
        for outcome in ("valid", "already_checked_in"):
            context = verdict(outcome)
            cases = [("before, en", before, "en"), ("now, en", now, "en"), ("now, de", now, "de"),
                     ("now, es", now, "es")]
            # Rounds interleaved, the fastest of each kept: the host is shared, and a round another process
            # interrupted says nothing about the template.
            best = {name: float("inf") for name, _, _ in cases}
            for _ in range(args.rounds):
                for name, t, lang in cases:
                    best[name] = min(best[name], per_render_us(app, t, lang, context, args.renders))
            floor = best["before, en"]
            for name, us in best.items():
                print(f"{outcome:20} {name:12} {us:8.1f} µs per render  ({us / floor:.2f}× before)")


if __name__ == "__main__":
    main()
