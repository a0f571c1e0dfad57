# Production image: gunicorn serving the app; migrations run on start.
# The same entrypoint (python -m webapp.launcher serve) is exercised by
# tests/test_launcher.py outside Docker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# DejaVu draws every character a ticket PDF may need (€, —, any title).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
# Only the run-time part of the pins: pgserver, pytest and playwright stay out.
RUN sed '/^# --- development and tests only/,$d' requirements.txt > runtime-requirements.txt \
 && pip install -r runtime-requirements.txt

COPY config.py wsgi.py ./
COPY webapp ./webapp
COPY migrations ./migrations
# The message catalogs, compiled from the .po files (webapp/i18n.py).
RUN python -m webapp.i18n

RUN useradd --system --uid 10001 --home /app app && chown -R app /app
USER app

ENV PORT=8000 WEB_WORKERS=3 WEB_THREADS=4 FLASK_APP=wsgi.py
# Served over HTTPS (a TLS proxy in front): the session cookie never travels on plain http.
ENV SESSION_COOKIE_SECURE=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

ENTRYPOINT ["python", "-m", "webapp.launcher"]
CMD ["serve"]
