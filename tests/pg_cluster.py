"""A private PostgreSQL cluster for the tests that need a server setting the shared one
lacks (pg_stat_statements must be preloaded, which takes a restart we never do to the
shared server). Built from the system's PostgreSQL binaries, on a Unix socket only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PORT = 5433  # only names the socket file: the cluster listens on no TCP address


def system_bin_dir(needs_library: str) -> Path | None:
    """The newest system PostgreSQL's bin directory, if it ships `needs_library`."""
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        root = Path(initdb).parents[1]
        if (root / "lib" / f"{needs_library}.so").exists():
            return root / "bin"
    return None


def _as_server_user(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; the Debian package's user runs them.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@contextmanager
def private_cluster(bin_dir: Path, *settings: str) -> Iterator[str]:
    """Start a throwaway cluster with `-c` settings; yields an asyncpg URL to its postgres db."""
    base = Path(tempfile.mkdtemp(prefix="quizbot-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    options = " ".join(
        [f"-p {PORT}", f"-k {base}", "-c listen_addresses=''", *(f"-c {s}" for s in settings)]
    )
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(base / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql+asyncpg://postgres@/postgres?host={base}&port={PORT}"
        finally:
            subprocess.run(
                _as_server_user(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
                ),
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
