"""Parsers for systemd's value syntaxes, shared by the unit readers and the runtime.

Each parser takes the text of one value (specifiers already expanded, unless said
otherwise) and returns a normalised Python value, or raises ``BadValue`` whose message
names the value and what was expected. They follow systemd 252's parsers
(src/basic/parse-util.c, time-util.c, extract-word.c, env-file.c,
src/core/load-fragment.c) so that a unit accepted here is accepted there too.

The runtime re-uses ``read_environment_file`` (EnvironmentFile= is read at each start)
and ``split_command_line`` (``$VAR`` as a whole word is split at spawn time).

Modules: words.py (splitting, quoting, C escapes; the others build on it), scalars.py
(booleans, numbers, time spans, sizes, modes, signals, exit statuses, rlimits),
execline.py (``Exec*=`` command lines), environment.py (Environment=, EnvironmentFile=).
Import from the package: the names below are its API, the split is not.
"""

from ..errors import BadValue
from .environment import (
    env_name_is_valid,
    parse_environment_assignments,
    parse_environment_file,
    parse_environment_file_ref,
    read_environment_file,
)
from .execline import format_exec, parse_exec
from .scalars import (
    EXIT_STATUS_NAMES,
    RLIMITS,
    TIMESPAN_MAX,
    c_strtol,
    parse_bool,
    parse_exit_status,
    parse_int,
    parse_mode,
    parse_rlimit,
    parse_signal,
    parse_size,
    parse_timespan,
    parse_uint,
    signal_name,
)
from .words import WHITESPACE, QuotingError, quote_word, split_command_line, split_words

__all__ = [
    "BadValue",
    "parse_bool",
    "parse_int",
    "parse_uint",
    "parse_timespan",
    "parse_size",
    "parse_mode",
    "parse_signal",
    "parse_rlimit",
    "parse_exit_status",
    "split_words",
    "split_command_line",
    "parse_exec",
    "parse_environment_assignments",
    "parse_environment_file",
    "read_environment_file",
    "parse_environment_file_ref",
    "env_name_is_valid",
    "quote_word",
    # also imported from here by listen.py and export.py
    "c_strtol",
    "signal_name",
    "format_exec",
    # the rest of what the single module made public
    "EXIT_STATUS_NAMES",
    "RLIMITS",
    "TIMESPAN_MAX",
    "QuotingError",
    "WHITESPACE",
]
