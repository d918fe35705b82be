"""Statistics that leave the system: every published aggregate passes through ``privacy``."""
