"""Messaging: what leaves the app.

E-mail (rendered, queued in the outbox, delivered) and webhooks, with the
links, calendar files and ticket PDFs they carry. The lowest group: it
imports only the base modules (`errors`, `audit`).
"""
