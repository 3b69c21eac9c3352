"""Unit files: systemd's INI syntax and the TOML form → validated models.

Public API (see each docstring):

- ``load_units(paths, strict=False) -> (UnitSet, [Problem])`` — never raises for bad input;
  bad units are left out and reported, good ones load
- ``UnitSet`` — ``sockets``, ``services``, ``aliases``, ``socket_templates``, ``get``,
  ``service_of``, ``sockets_of``, ``instantiate`` (the Accept=yes hot path)
- ``Problem`` — one printable finding: ``units/web.socket:4: ListenStream=: …``
- ``export_unit(name, entries, fmt)`` — a unit file as TOML or INI, its text kept; loading
  it gives an equal model
- ``load_one(path)`` — one file with its drop-ins, no pairing checks (for import)
- ``UnitError`` — raised by ``UnitSet.instantiate`` for an instance that is not valid

Value parsers the runtime reuses (``read_environment_file``, ``split_command_line`` …)
live in ``activator.units.values``.

Module map, data flowing one way: discover.py (which files: load path, symlinks,
drop-ins; files.py reads one: regular files only, size-capped) → ini.py /
toml_reader.py (text → entries) → directives/ (tables.py: what each directive is;
validators.py: its value kind) + values/ (words.py, scalars.py, execline.py,
environment.py), listen.py, specifiers.py, names.py → build.py (entries → model,
load-time checks; checks.py declares what the machine is asked) → pairing.py (aliases,
sockets with their services) → unitset.py (``UnitSet``); loader.py runs these steps;
export.py (entries → TOML or INI); suggest.py ("did you mean"). model.py (the
models) and errors.py (``Problem``, ``BadValue``, ``q``) serve them all.
"""

from .errors import Problem, UnitError
from .loader import UnitSet, load_one, load_units

__all__ = ["Problem", "UnitError", "UnitSet", "export_unit", "load_one", "load_units"]


def __getattr__(name: str):
    # The daemon never writes TOML: tomli-w is loaded only by `activatorctl import`.
    if name == "export_unit":
        from .export import export_unit

        return export_unit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
