"""The organiser's side of the services.

Editing events, orders and refunds, codes, reports, the waiting list's
admin, exports, check-in and door staff. The top group: it may import every
other group, and none imports it.
"""
