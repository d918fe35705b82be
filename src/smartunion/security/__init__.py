"""Security: identity, permissions, organisation scopes, field crypto, masking, audit."""
