"""staged-copy-readable-by-nobody: when the connector runs as root, the docker backend hands the
container (uid 65534) its own copy of the dataset. That copy used to sit in a folder of /tmp any
host process running as nobody could enter during the job. Now it sits inside a 0700 folder:
the container reads it (the engine binds the file itself), a host nobody does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.container import readable_copy, staging_dir


def read_as_nobody(path: Path) -> str:
    """Try to read ``path`` in a child process that has become uid/gid 65534."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, try, report, exit without cleanup
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            answer = "read: " + path.read_text()
        except OSError as exc:
            answer = f"refused: {exc.strerror}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as result:
        return result.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="the copy for uid 65534 is made only when running as root")
def test_a_host_process_running_as_nobody_cannot_read_the_staged_copy(tmp_path: Path) -> None:
    dataset = tmp_path / "subs.csv"
    dataset.write_text("phone\n13800000001\n")
    dataset.chmod(0o600)
    with staging_dir() as staging:
        copy = readable_copy(dataset, staging)
        assert copy.stat().st_uid == 65534  # the container's user can read its copy
        assert read_as_nobody(copy) == "refused: Permission denied"
    assert not staging.exists()
