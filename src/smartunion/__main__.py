"""``python -m smartunion``: the same as the ``smartunion`` command."""

from smartunion.cli import app

app(prog_name="smartunion")
