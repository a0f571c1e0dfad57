"""People: accounts and passwords, the signed links that verify and reset them, and personal API tokens."""
