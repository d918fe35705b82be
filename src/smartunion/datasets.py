"""Every domain's export datasets, registered with the export guard on import.

Imported by the composition roots (the web app and the CLI), so that the security layer
never imports a domain package.
"""

from smartunion.members import export as member_export

__all__ = ["member_export"]
