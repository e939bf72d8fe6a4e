"""The one base class of every error a user can fix.

Each module raises its own subclass (``CorpusError``, ``TokenizerError``,
``ParamsError`` ...), always with a single line that names the file, flag or
setting at fault and the fix. The ``tokstudy`` command line prints such an
error as ``error: <message>`` and exits with status 2; any other exception is
a bug in tokstudy and keeps its traceback.
"""

from __future__ import annotations


class TokstudyError(Exception):
    """A bad input or setting: the message says what to change."""
