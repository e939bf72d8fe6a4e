"""Every exception class of tokstudy, in one module that imports nothing.

A module raises the class of its concern (``CorpusError``, ``TokenizerError``,
``ParamsError`` ...) and imports it from here, so catching or raising an error
never pulls in a heavy module (torch, tokenizers, pandas). Every user-fixable
error subclasses :class:`TokstudyError` and carries a single line that names the
file, flag or setting at fault and the fix; the ``tokstudy`` command line prints
it as ``error: <message>`` and exits with status 2. Any other exception is a bug
in tokstudy and keeps its traceback.

:class:`MissingInput` is the one error for a pipeline input that does not exist
yet (a corpus, a trained tokenizer, a model, a run record): a step never builds
it, and the message names the DVC stage that makes it (``tokstudy.stages.inputs``
holds that table).
"""

from __future__ import annotations


class TokstudyError(Exception):
    """A bad input or setting: the message says what to change."""


class EvaluateError(TokstudyError, RuntimeError):
    """An evaluation cannot run: missing model, benchmark file, or a bad setting."""


class BpbError(EvaluateError):
    """Bits per byte cannot be computed: no text, or windows that cannot hold a token."""


class CandidateError(Exception):
    """The candidate raised, crashed, broke the protocol, or returned something that is not a plain literal."""


class CliError(TokstudyError, ValueError):
    """A bad command-line argument: the message names the flag or argument and the fix."""


class CorpusError(TokstudyError, ValueError):
    """The corpus cannot be built or read; the message names the fix."""


class CostsError(TokstudyError, ValueError):
    """Invalid model shape or cost-model input."""


class DataError(TokstudyError, ValueError):
    """Packed data is missing, malformed, or does not match what the caller expects."""


class FetchError(TokstudyError, RuntimeError):
    """A pinned artifact cannot be fetched or does not match its pin; the message names the fix."""


class MetricsError(TokstudyError, ValueError):
    """Metric inputs are inconsistent or empty."""


class ModelError(TokstudyError, RuntimeError):
    """A model directory is missing, is not a causal LM, or does not load."""


class OptimumError(TokstudyError, ValueError):
    """Invalid NSL points, vocabulary grid or objective."""


class ParamsError(TokstudyError, ValueError):
    """params.yaml is missing a key or holds an invalid value."""


class ProblemError(EvaluateError):
    """A problem set cannot be read or judged: missing file or package, malformed lines, bad counts."""


class SandboxError(TokstudyError, RuntimeError):
    """The sandbox cannot run: bubblewrap missing or broken, an unknown backend, a bad limit."""


class SpeedError(EvaluateError):
    """A speed cannot be measured: no prompts, no tokenizers, or bad round counts."""


class StatsError(TokstudyError, ValueError):
    """A statistic cannot be computed: no values, or settings out of range (a bootstrap's confidence, resamples)."""


class SummaryError(TokstudyError, ValueError):
    """A summary input is missing or unreadable."""


class TableError(TokstudyError, ValueError):
    """A bad --format or --baseline: the message names the flag and the choices."""


class TokenMapError(TokstudyError, RuntimeError):
    """The old vocabulary cannot represent the new tokens; the message names the fix."""


class TokenizerError(TokstudyError, ValueError):
    """A tokenizer, its settings or its input are invalid; the message names the fix."""


class ToolError(TokstudyError, ValueError):
    """A bad argument of a tool verb: the message names the argument and the fix."""


class TrainError(TokstudyError, RuntimeError):
    """Training cannot start or resume as asked."""


class TransferError(TokstudyError, RuntimeError):
    """The embedding transfer cannot run on these inputs; the message names the fix."""


class MissingInput(TokstudyError, FileNotFoundError):
    """A pipeline input does not exist yet: the message names the stage that makes it and the command to run."""
