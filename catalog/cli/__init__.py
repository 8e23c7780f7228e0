"""The `catalog` command: a thin shell over :class:`catalog.Registry`.

Each command parses its options, calls one library function and formats what
it returns: a table or a line for people, ``--json`` for scripts. Every
CatalogError goes through one funnel (:func:`catalog.terminal.funnel`): one
``Error: ...`` line on stderr, exit 1 for a refusal, 2 for malformed input.

``shell`` holds the app, its global options and what commands share;
``output`` how results are shown; the commands live by concern in
``writing``, ``reading``, ``site`` and ``maintenance`` and are registered
below, in the order ``catalog --help`` lists them. The console script is
``catalog.entry:main``, which answers a plain ``catalog resolve`` without
importing this package.
"""

from __future__ import annotations

from . import maintenance, reading, site, writing
from .shell import app

__all__ = ["app"]

for _name, _command in (
    (None, writing.register),
    (None, writing.approve),
    (None, writing.reject),
    (None, writing.deprecate),
    (None, writing.deploy),
    (None, writing.rollback),
    (None, writing.undeploy),
    (None, writing.tag),
    (None, writing.describe),
    (None, writing.delete),
    (None, writing.rename),
    (None, reading.resolve),
    (None, reading.show),
    ("list", reading.list_models),
    (None, reading.history),
    (None, reading.lineage),
    (None, reading.candidates),
    (None, reading.sql),
    (None, reading.check),
    (None, writing.redact),
    (None, writing.init),
    (None, site.build),
    (None, site.serve),
    (None, maintenance.doctor),
    (None, maintenance.compact),
    (None, maintenance.snapshot),
    (None, maintenance.copy),
    (None, site.demo),
):
    app.command(_name)(_command)
