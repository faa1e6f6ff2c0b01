"""The PSI worker's process pool: its workers end on their own once the work is done.

Each case runs in a fresh interpreter: a pool forked from the multi-threaded test process may
deadlock (it once hung the whole suite).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from sandbox.ops import psi

    marks = sys.argv[1]

    def on_sigterm(signum, frame):  # what coverage's sigterm=true handler does: run Python
        open(os.path.join(marks, str(os.getpid())), "w").close()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)  # the forked workers inherit it
    key = psi.new_key()
    request = psi.client_request([f"1380000{i:04d}" for i in range(400)], key, False, 2)
    print(len(request))
    """
)


def test_pool_workers_exit_without_being_terminated(tmp_path: Path) -> None:
    """Leaving ``with Pool()`` SIGTERMs live workers; a worker whose handler runs Python can be
    caught holding the task queue's lock, and the join then hangs (the CI hang of stop 21).
    The pool is closed and joined first, so no worker ever receives SIGTERM."""
    marks = tmp_path / "sigterm"
    marks.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(marks)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 0
    assert sorted(p.name for p in marks.iterdir()) == []
