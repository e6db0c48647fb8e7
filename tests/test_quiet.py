"""recsel._quiet: third-party noise off by default, everything on with --verbose."""

import logging
import os
import subprocess
import sys
import warnings

import pytest

from recsel import quiet as _quiet

# A line from TensorFlow's C++ logs, absl, CUDA or a Python warning.
NOISE = ("tensorflow", "absl", "cuda", "cudnn", "cufft", "cublas", "warning", "xla")


@pytest.fixture
def restore_quiet():
    yield
    os.environ.pop(_quiet.ENV_VAR, None)
    _quiet.install(verbose=False)


def _run(*args: str, verbose: bool = False) -> list[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "RECSEL_VERBOSE")
    }
    if verbose:
        env["RECSEL_VERBOSE"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "recsel", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    return done.stdout.splitlines()


def test_select_help_has_no_tensorflow_absl_or_cuda_line():
    quiet = _run("select", "--help")
    assert quiet[0].startswith("usage: recsel select"), quiet[:5]
    noisy = [line for line in quiet if any(word in line.lower() for word in NOISE)]
    assert noisy == []
    # The same command with RECSEL_VERBOSE=1 shows what quiet mode filtered.
    verbose = _run("select", "--help", verbose=True)
    assert len(verbose) > len(quiet)


def test_verbose_is_requested_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv(_quiet.ENV_VAR, raising=False)
    assert not _quiet.verbose_requested(["select", "x.csv"])
    assert _quiet.verbose_requested(["select", "x.csv", "--verbose"])
    monkeypatch.setenv(_quiet.ENV_VAR, "1")
    assert _quiet.verbose_requested([])


def test_quiet_keeps_recsel_warnings_and_drops_known_third_party_ones(restore_quiet):
    _quiet.install(verbose=False)
    assert logging.getLogger("absl").level == logging.ERROR
    assert logging.getLogger("recsel").level == logging.INFO
    with warnings.catch_warnings(record=True) as caught:
        # catch_warnings(record=True) keeps the filters installed above.
        warnings.warn_explicit("old API", FutureWarning, "x.py", 1, module="google.api_core.x")
        warnings.warn_explicit(
            "budget too tight", UserWarning, "x.py", 1, module="recsel.selection.budget"
        )
    assert [str(w.message) for w in caught] == ["budget too tight"]
    # A failing DoFn's logged traceback duplicates the error its pipeline raises.
    assert logging.getLogger("apache_beam.runners.common").level == logging.CRITICAL
    _quiet.install(verbose=True)
    assert logging.getLogger("absl").level == logging.NOTSET
    assert logging.getLogger("apache_beam.runners.common").level == logging.NOTSET
    assert os.environ[_quiet.ENV_VAR] == "1"  # subprocesses (Beam, TFX) inherit it
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("old API", FutureWarning, "x.py", 2, module="google.api_core.x")
    assert [str(w.message) for w in caught] == ["old API"]


def test_command_lines_print_recsel_warnings_as_one_plain_block(monkeypatch, capsys):
    others = []
    monkeypatch.setattr(warnings, "showwarning", lambda *a, **k: others.append(a[2:4]))
    _quiet.plain_warnings()
    _quiet.plain_warnings()  # idempotent: one wrapper
    inside = os.path.join(os.path.dirname(_quiet.__file__), "cli.py")
    short = UserWarning("recsel: rows are short.\n  - batch lowered")
    warnings.showwarning(short, UserWarning, inside, 99)
    warnings.showwarning(UserWarning("training data: rare values"), UserWarning, inside, 3)
    warnings.showwarning(UserWarning("theirs"), UserWarning, "/elsewhere/x.py", 7)
    err = capsys.readouterr().err
    assert err == (
        "recsel WARNING: rows are short.\n  - batch lowered\n"
        "recsel WARNING: training data: rare values\n"
    )
    assert others == [("/elsewhere/x.py", 7)]  # Python's format, unchanged


def test_child_interpreters_drop_googles_python_version_notice(restore_quiet, monkeypatch):
    # Beam's multi-processing workers import Google's clients before recsel; they printed
    # the notice once per worker and library (16 lines in a 2-worker pipeline).
    monkeypatch.setenv("PYTHONWARNINGS", "default::ResourceWarning")
    notice = (
        "import warnings; warnings.warn('You are using a non-supported Python version "
        "(3.10.13). Google will not post any further updates', FutureWarning); "
        "warnings.warn('their own', FutureWarning)"
    )

    def child_stderr() -> str:
        return subprocess.run(
            [sys.executable, "-c", notice], capture_output=True, text=True, check=True
        ).stderr

    _quiet.install(verbose=False)
    quiet = child_stderr()
    assert "non-supported Python version" not in quiet and "their own" in quiet
    assert os.environ["PYTHONWARNINGS"].startswith("default::ResourceWarning,")  # kept
    _quiet.install(verbose=True)
    assert "non-supported Python version" in child_stderr()
    assert os.environ["PYTHONWARNINGS"] == "default::ResourceWarning"


def test_a_shells_child_processes_print_recsel_warnings_plainly(restore_quiet, monkeypatch):
    # Beam's multi-processing workers import recsel afresh: the ensemble job's workers
    # printed "ensemble.py:122: UserWarning: recsel: ..." and a source line.
    monkeypatch.delenv("RECSEL_PLAIN_WARNINGS", raising=False)
    monkeypatch.delenv(_quiet.ENV_VAR, raising=False)
    code = "import recsel, warnings; warnings.warn('recsel: rows are short')"

    def child_stderr() -> str:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        return done.stderr

    assert "UserWarning: recsel: rows are short" in child_stderr()  # a library user's format
    monkeypatch.setattr(warnings, "showwarning", warnings._showwarning_orig)
    _quiet.install(verbose=False, command_line=True)
    assert child_stderr().strip() == "recsel WARNING: rows are short"
