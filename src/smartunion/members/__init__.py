"""Members (会员): personal records, consent and lookups."""
