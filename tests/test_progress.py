"""recsel.progress: a tqdm bar on a terminal, short plain lines everywhere else."""

import io
import logging

import pytest

from recsel.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="recsel.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "recsel.progress"]


def test_plain_mode_writes_a_line_per_tenth_and_a_final_one(lines):
    stream = io.StringIO()  # not a terminal
    with Progress(1000, "round 1/2", stream=stream, every_seconds=1e9) as bar:
        assert not bar.live
        for _ in range(1000):
            bar.update()
            bar.set_postfix(loss="0.5000")
    written = lines()
    assert len(written) == 10, written  # 100, 200, ..., 900 and the final line
    assert written[0] == "round 1/2: 100/1000 steps (10%), loss 0.5000"
    assert written[-1].startswith("round 1/2: 1000/1000 steps (100%), loss 0.5000 in ")
    assert stream.getvalue() == ""  # nothing drawn on the stream itself
    assert all("\r" not in line and len(line) < 300 for line in written)


def test_plain_mode_also_writes_after_the_time_interval(lines):
    bar = Progress(1000, "export", unit="model", stream=io.StringIO(), every_seconds=0.0)
    for _ in range(5):
        bar.update()
    bar.close()
    bar.close()  # a second close writes nothing
    assert len(lines()) == 6  # every update is "30 s later" with a zero interval, plus final


def test_terminal_mode_draws_a_tqdm_bar_and_logs_nothing(lines):
    stream = _Tty()
    with Progress(50, "round 1/1", stream=stream) as bar:
        assert bar.live
        bar.update(50)
    assert "round 1/1" in stream.getvalue() and "\r" in stream.getvalue()
    assert lines() == []


def test_disabled_progress_is_silent(lines):
    stream = _Tty()
    with Progress(50, "round 1/1", stream=stream, enabled=False) as bar:
        bar.update(50)
        bar.set_postfix(loss=1)
    assert stream.getvalue() == "" and lines() == []
