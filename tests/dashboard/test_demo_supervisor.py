"""The demo's supervisor starts a child that exits again, pausing longer while it keeps failing."""

from __future__ import annotations

import time

import pytest

from dashboard.demo import RESTART_MAX_SECONDS, Supervisor


def test_a_child_that_keeps_exiting_is_restarted_with_a_growing_pause_and_a_line_each_time(
    tmp_path
):
    lines: list[str] = []
    supervisor = Supervisor(tmp_path, lines.append)
    child = supervisor.spawn("flaky", ["-c", "raise SystemExit(3)"])
    pauses = []
    now = time.monotonic()
    for restart in range(1, 7):
        child.process.wait()
        supervisor.check(now)
        assert "flaky exited with 3 after 0 s; restarting in" in lines[-1]
        assert f"(restart {restart}); see {tmp_path / 'flaky.log'}" in lines[-1]
        pauses.append(child.restart_at - now)
        supervisor.check(now + pauses[-1] - 0.01)
        assert child.restarts == restart - 1  # still pausing
        now += pauses[-1]
        supervisor.check(now)
        assert child.restarts == restart and lines[-1].startswith("flaky restarted (pid ")
        now = child.started_at = time.monotonic()
    assert pauses == pytest.approx([1, 2, 4, 8, 16, RESTART_MAX_SECONDS])
    # one that ran a minute before it exited had recovered: the shortest pause again
    child.process.wait()
    supervisor.check(now + 61)
    assert child.restart_at - (now + 61) == pytest.approx(1)
    assert "after 61 s; restarting in 1 s (restart 7)" in lines[-1]


def test_stop_ends_every_child_promptly(tmp_path):
    supervisor = Supervisor(tmp_path, print)
    children = [supervisor.spawn(f"sleeper{i}", ["-c", "import time; time.sleep(60)"])
                for i in range(2)]
    started = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - started < 5
    assert [child.process.returncode for child in children] == [-15, -15]
