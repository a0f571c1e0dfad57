"""The service layer: every change of state, and the reads the pages need.

Importing the package installs the waiting list into `inventory` (see its
docstring), so no entry point can reach inventory without it.
"""
from webapp.services.waiting import waitlist  # noqa: F401
