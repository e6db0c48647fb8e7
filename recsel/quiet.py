"""Quiet by default: third-party noise is filtered at its source, recsel's lines stay.

Every shell (the ``recsel`` CLI, ``pipelines/*``, the Beam jobs, the TFX executor) goes
through this one module. ``recsel/__init__`` calls ``install()`` before TensorFlow
loads, because TensorFlow's C++ log level (``TF_CPP_MIN_LOG_LEVEL``) is read once at
load time: the CUDA "Unable to register cuDNN factory" errors are printed while
TensorFlow is imported, before any argument is parsed.

What quiet mode filters:

- TensorFlow C++ logs (``TF_CPP_MIN_LOG_LEVEL=3``, unless the user set it);
- the ``absl`` and ``tensorflow`` Python loggers below ERROR (TFX, TFDV, Beam and
  Keras write their warnings there, e.g. ``ArtifactQuery.property_predicate``);
- known third-party ``FutureWarning``/``DeprecationWarning``s (Google's "non-supported
  Python version" notice and friends), matched by the module that issues them, and
  the Google notice in child interpreters too (Beam's workers; ``PYTHONWARNINGS``);
- TFX's module packaging (``setup.py bdist_wheel``), whose output goes to a log file.

What stays: recsel's own ``warnings.warn`` and its ``recsel.*`` loggers (INFO and up,
one plain line each), and every error. ``--verbose`` on any recsel command line or
``RECSEL_VERBOSE=1`` turns all filters off.

Example:
    >>> from recsel import quiet
    >>> quiet.install(verbose=False)
    >>> quiet.is_verbose()
    False
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import types
import warnings
from collections.abc import Sequence

ENV_VAR = "RECSEL_VERBOSE"
# Set by a shell's install(command_line=True): its child processes print plain warnings too.
_PLAIN_VAR = "RECSEL_PLAIN_WARNINGS"
_TRUE = ("1", "true", "yes", "on")
# Third-party modules whose FutureWarning/DeprecationWarning a user cannot act on.
_NOISY_MODULES = (
    r"google(\..*)?",
    r"apache_beam(\..*)?",
    r"tensorflow(_.*)?(\..*)?",
    r"tfx(_bsl)?(\..*)?",
    r"tf_keras(\..*)?",
    r"keras(\..*)?",
    r"ml_metadata(\..*)?",
    r"setuptools(\..*)?",
    r"pkg_resources(\..*)?",
    r"jupyter_client(\..*)?",
    r"absl(\..*)?",
)
_state = {"verbose": False, "installed": False}
# recsel's own source files: warnings raised from them print as plain lines in a shell.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def verbose_requested(argv: Sequence[str] | None = None) -> bool:
    """True when ``RECSEL_VERBOSE`` is set to a true value or ``--verbose`` is in ``argv``.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``). The flag is looked for
            here as well as parsed by argparse because TensorFlow's C++ log level must be
            fixed before TensorFlow loads, which is before argparse runs.

    Returns:
        Whether to show everything.
    """
    if os.environ.get(ENV_VAR, "").strip().lower() in _TRUE:
        return True
    return "--verbose" in (sys.argv[1:] if argv is None else argv)


def is_verbose() -> bool:
    """Whether the last ``install()`` chose verbose mode."""
    return _state["verbose"]


def install(verbose: bool | None = None, command_line: bool = False) -> None:
    """Applies quiet (or verbose) mode; safe to call again, e.g. after parsing ``--verbose``.

    Args:
        verbose: Show everything; default ``verbose_requested()``.
        command_line: A shell's ``main`` (the CLI, ``pipelines/*``): in quiet mode
            recsel's warnings then print as plain lines (``plain_warnings``).
    """
    verbose = verbose_requested() if verbose is None else verbose
    _state["verbose"] = verbose
    if verbose:
        os.environ[ENV_VAR] = "1"  # Beam and TFX subprocesses inherit the choice
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _subprocess_warnings(verbose)
    _warning_filters(verbose)
    _python_loggers(verbose)
    if command_line and not verbose:
        # Beam's worker processes import recsel afresh: they print its warnings as the
        # shell does only if they are told to, through the environment they inherit.
        os.environ[_PLAIN_VAR] = "1"
    if not verbose and os.environ.get(_PLAIN_VAR) == "1":
        plain_warnings()
    _state["installed"] = True


def plain_warnings() -> None:
    """Command lines: recsel's own warnings print as ``recsel WARNING: message``.

    Python's format adds the file and line the warning names and that line's source,
    which in a command line point into recsel (``cli.py:99: UserWarning: ...`` and then
    ``result = select(``), not at anything the user can change. Warnings from other
    code keep Python's format. Call it once a shell has chosen quiet mode.

    Example:
        >>> quiet.install(verbose=False); quiet.plain_warnings()
    """
    if getattr(warnings.showwarning, "_recsel", False):
        return
    python_format = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if not (text.startswith("recsel:") or os.path.abspath(filename).startswith(_PACKAGE)):
            return python_format(message, category, filename, lineno, file, line)
        stream = sys.stderr if file is None else file
        try:
            stream.write(f"recsel WARNING: {text.removeprefix('recsel:').strip()}\n")
        except OSError:  # a closed stream, as Python's own format tolerates
            pass

    show._recsel = True  # type: ignore[attr-defined]
    warnings.showwarning = show


# Beam's multi-processing workers (and other Python children) import Google's client
# libraries before any recsel code runs, so the filters below never reach them: each
# worker printed the "non-supported Python version" FutureWarning. PYTHONWARNINGS is read
# by every child interpreter at start-up; its message field is a literal prefix.
_CHILD_FILTER = "ignore:You are using a non-supported Python version:FutureWarning"


def _subprocess_warnings(verbose: bool) -> None:
    entries = [e for e in os.environ.get("PYTHONWARNINGS", "").split(",") if e]
    entries = [e for e in entries if e != _CHILD_FILTER]
    if not verbose:
        entries.append(_CHILD_FILTER)
    if entries:
        os.environ["PYTHONWARNINGS"] = ",".join(entries)
    else:
        os.environ.pop("PYTHONWARNINGS", None)


def _warning_filters(verbose: bool) -> None:
    if verbose:
        warnings.filters[:] = [f for f in warnings.filters if not _is_ours(f)]
        return
    for module in _NOISY_MODULES:
        for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=module)
    # Raised from user-level frames (TF's own deprecation shims), so no module to match.
    warnings.filterwarnings("ignore", message=r".*non-supported Python version.*")
    # setuptools' notice when TFX's packaging imports it after distutils: not actionable.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"_distutils_hack")


def _is_ours(entry: tuple) -> bool:
    action, message, category, module, _ = entry
    pattern = getattr(module, "pattern", "") or getattr(message, "pattern", "")
    return action == "ignore" and (
        pattern in (*_NOISY_MODULES, "_distutils_hack") or "non-supported Python version" in pattern
    )


class _PlainFormatter(logging.Formatter):
    """``recsel: message`` for INFO, ``recsel WARNING: message`` above it: one line each."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno > logging.INFO:
            return f"recsel {record.levelname}: {message}"
        return f"recsel: {message}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (Jupyter, pytest, redirections)."""

    _recsel = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; ignore
        pass


def _python_loggers(verbose: bool) -> None:
    ours = logging.getLogger("recsel")
    if not any(getattr(h, "_recsel", False) for h in ours.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter())
        ours.addHandler(handler)
    ours.setLevel(logging.DEBUG if verbose else logging.INFO)
    ours.propagate = verbose  # in quiet mode absl's root handler would print it twice
    level = logging.NOTSET if verbose else logging.ERROR
    for name in ("absl", "tensorflow", "apache_beam", "tfx", "ml_metadata"):
        logging.getLogger(name).setLevel(level)
    # A failing DoFn is logged here, traceback and all, and then raised: the pipeline's
    # caller reports it (recsel names the shard), so in quiet mode the log is a duplicate.
    logging.getLogger("apache_beam.runners.common").setLevel(
        logging.NOTSET if verbose else logging.CRITICAL
    )
    if not verbose and "absl.logging" in sys.modules:
        sys.modules["absl.logging"].set_verbosity("error")


def quiet_packaging(log_dir: str | None = None) -> str | None:
    """Sends TFX's ``setup.py bdist_wheel`` output (module-file packaging) to a log file.

    TFX packages ``module_file``s into a wheel with a ``subprocess.check_call`` whose
    output (setuptools' "running bdist_wheel ... copying ...") is not logging and cannot
    be filtered otherwise. Only that call site is redirected; nothing else changes. A
    failed build still raises TFX's ``RuntimeError``, and the log path is in the message
    printed by ``packaging_failed``.

    Args:
        log_dir: Directory of the log file (default: the temp directory).

    Returns:
        The log file's path, or None in verbose mode (nothing redirected).
    """
    if is_verbose():
        return None
    from tfx.components.util import udf_utils

    if log_dir is None and hasattr(udf_utils.subprocess, "recsel_log"):
        return udf_utils.subprocess.recsel_log  # already redirected (e.g. by main())
    path = os.path.join(log_dir or tempfile.gettempdir(), "recsel-packaging.log")

    def check_call(cmd, **kwargs):
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(map(str, cmd))}\n")
            log.flush()
            try:
                return subprocess.check_call(cmd, stdout=log, stderr=log, **kwargs)
            except subprocess.CalledProcessError:
                print(f"recsel: module packaging failed; its output is in {path}", file=sys.stderr)
                raise

    udf_utils.subprocess = types.SimpleNamespace(
        check_call=check_call, CalledProcessError=subprocess.CalledProcessError, recsel_log=path
    )
    return path
