"""The bot and the CLI run on uvloop where it exists (Linux, macOS)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from quizbot.cli import run_async


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop does not support Windows")
def test_commands_run_on_uvloop() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_async(loop_module()).startswith("uvloop")
