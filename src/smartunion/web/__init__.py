"""Web layer (thin): JSON API, staff console and member portal over the domain services."""
