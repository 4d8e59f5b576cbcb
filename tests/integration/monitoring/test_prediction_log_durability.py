"""Durability of the prediction log: every acknowledged record survives SIGKILL of its writer.

A child process (its own process group) runs 4 threads that append 600 records through
``open_prediction_log`` with the default settings (``fsync: normal``), one to five records per
call; a record counts as acknowledged once ``append`` has returned, and only then does the child
write its id to the pipe. The test kills the whole group with SIGKILL as soon as the 600th id
arrives (the threads go on appending unacknowledged records until then) and reopens the log.
"""

from __future__ import annotations

import io
import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.config import load_settings
from fmnist.monitoring.export import export_jsonl
from fmnist.monitoring.prediction_log import open_prediction_log

ACKNOWLEDGED = 600
THREADS = 4

CHILD = textwrap.dedent(
    """
    import os, sys, threading
    from datetime import UTC, datetime
    from fmnist.config import load_settings
    from fmnist.monitoring.prediction_log import open_prediction_log
    from prediction_records import record

    log = open_prediction_log(load_settings().settings)
    per_thread, sizes = int(sys.argv[1]), (1, 3, 1, 5, 2)

    def work(t):
        done, n = 0, 0
        while True:  # acknowledged records first, then unacknowledged ones until killed
            size = sizes[n % len(sizes)] if done < per_thread else 4
            size = min(size, per_thread - done) if done < per_thread else size
            batch = [
                record(n + k, datetime.now(UTC), request_id=f"t{t}-{done + k}")
                for k in range(size)
            ]
            log.append(batch)
            if done < per_thread:
                os.write(1, (" ".join(r.request_id for r in batch) + "\\n").encode())
            done, n = done + size, n + 1

    for t in range(int(sys.argv[2])):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def _run_and_kill(env: dict[str, str]) -> tuple[list[str], int]:
    """Start the child, collect acknowledged ids until 600, SIGKILL its group right away."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ACKNOWLEDGED // THREADS), str(THREADS)],
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    acked: list[str] = []
    buffer = b""
    deadline = time.monotonic() + 120
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        while len(acked) < ACKNOWLEDGED:
            assert time.monotonic() < deadline, f"only {len(acked)} acknowledgements"
            if not selector.select(timeout=1.0):
                assert child.poll() is None, "the child exited early"
                continue
            chunk = os.read(child.stdout.fileno(), 65536)
            assert chunk, "the child closed its pipe"
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            acked += [rid for line in lines for rid in line.decode().split()]
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    return acked, child.returncode


def _child_env() -> dict[str, str]:
    tests_dir = str(Path(__file__).resolve().parents[2])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }


def test_every_acknowledged_record_survives_sigkill_of_the_process_group() -> None:
    acked, returncode = _run_and_kill(_child_env())

    assert returncode == -signal.SIGKILL
    assert len(acked) == ACKNOWLEDGED and len(set(acked)) == ACKNOWLEDGED
    log = open_prediction_log(load_settings().settings, create=False)
    logged = {r.request_id for r in log.window()}
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    assert all(log.get(rid) is not None for rid in acked[-10:])

    out = io.StringIO()
    export_jsonl(log, out)
    exported = {json.loads(line)["request_id"] for line in out.getvalue().splitlines()}
    assert set(acked) <= exported
    assert len(exported) == log.count() >= ACKNOWLEDGED

    result = CliRunner().invoke(app, ["monitor", "export"])
    assert result.exit_code == 0, result.output
    assert set(acked) <= {json.loads(line)["request_id"] for line in result.stdout.splitlines()}


def test_two_processes_append_to_one_log_at_once() -> None:
    """Server workers are separate processes: both write through WAL and the busy timeout."""
    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from fmnist.config import load_settings
        from fmnist.monitoring.prediction_log import open_prediction_log
        from prediction_records import record

        log = open_prediction_log(load_settings().settings)
        for i in range(300):
            log.append([record(i, datetime.now(UTC), request_id=f"p{sys.argv[1]}-{i}")])
        """
    )
    env = _child_env()
    children = [subprocess.Popen([sys.executable, "-c", script, str(p)], env=env) for p in (1, 2)]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    log = open_prediction_log(load_settings().settings, create=False)
    assert log.count() == 600
    assert {r.request_id for r in log.window()} == {f"p{p}-{i}" for p in (1, 2) for i in range(300)}
