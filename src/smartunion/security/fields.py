"""Registry of encrypted columns: what key rotation (and later exports) must know about.

A domain declares its encrypted fields next to its models with :func:`encrypted_field`;
``smartunion keys rotate`` walks this registry, so a field added later is rotated too.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartunion.db import Base


@dataclass(frozen=True)
class EncryptedField:
    model: type[Base]
    ciphertext: str  # attribute holding the ciphertext
    blind_index: str | None  # attribute holding the blind index, if the field is searchable
    name: str  # field name used as associated data and blind-index context, e.g. member.phone


REGISTRY: list[EncryptedField] = []


def encrypted_field(
    model: type[Base], ciphertext: str, blind_index: str | None, name: str
) -> EncryptedField:
    spec = EncryptedField(model, ciphertext, blind_index, name)
    if spec not in REGISTRY:
        REGISTRY.append(spec)
    return spec
