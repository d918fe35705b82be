"""Operations: backup and restore (more operator tasks follow)."""
