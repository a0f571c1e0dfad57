"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
from webapp import create_app
from webapp.memory import tune_malloc

# Before the worker starts its threads: see webapp/memory.py.
tune_malloc()

app = create_app()
