"""Money: paying for a hold, the payment gateway, and what the hold and order pages read.

Imports selling (a paid hold's units are sold), waiting (an accepted offer
ends its waiting-list entry) and messaging (the confirmation mail); nothing
below imports money.
"""
