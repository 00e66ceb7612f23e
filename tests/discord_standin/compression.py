"""Gateway transport compression, as requested by the client in the ``compress`` query parameter.

discord.py asks for ``zstd-stream`` when a zstd decompressor is importable (the ``zstandard``
package, or ``compression.zstd`` on Python 3.14+) and ``zlib-stream`` otherwise. Both are one
compression context per connection; each gateway message is flushed so that it decodes on its own.
"""

from __future__ import annotations

import importlib.util
import zlib
from typing import Any, Protocol


class StreamCompressor(Protocol):
    def compress(self, text: str) -> bytes: ...


class ZlibStream:
    """zlib-stream: each message ends with Z_SYNC_FLUSH (``00 00 ff ff``)."""

    def __init__(self) -> None:
        self._ctx = zlib.compressobj()

    def compress(self, text: str) -> bytes:
        return self._ctx.compress(text.encode()) + self._ctx.flush(zlib.Z_SYNC_FLUSH)


class ZstdStream:
    """zstd-stream: one frame for the connection, a block flush after every message."""

    def __init__(self) -> None:
        self._flush_block: Any
        try:
            import zstandard  # type: ignore[import-not-found]

            self._ctx: Any = zstandard.ZstdCompressor().compressobj()
            self._flush_block = zstandard.COMPRESSOBJ_FLUSH_BLOCK
            self._flush_kwargs = False
        except ImportError:
            from compression import zstd  # type: ignore[import-not-found]

            self._ctx = zstd.ZstdCompressor()
            self._flush_block = zstd.ZstdCompressor.FLUSH_BLOCK
            self._flush_kwargs = True

    def compress(self, text: str) -> bytes:
        out = bytes(self._ctx.compress(text.encode()))
        if self._flush_kwargs:
            return out + bytes(self._ctx.flush(mode=self._flush_block))
        return out + bytes(self._ctx.flush(self._flush_block))


def zstd_available() -> bool:
    """Mirrors discord.py's choice: zstd when either implementation is importable."""
    if importlib.util.find_spec("zstandard") is not None:
        return True
    try:
        return importlib.util.find_spec("compression.zstd") is not None
    except ModuleNotFoundError:  # no ``compression`` package before Python 3.14
        return False


def compressor_for(mode: str | None) -> StreamCompressor | None:
    """Return a compressor for the query's ``compress`` value; ``None`` means plain text frames."""
    if not mode:
        return None
    if mode == "zlib-stream":
        return ZlibStream()
    if mode == "zstd-stream" and zstd_available():
        return ZstdStream()
    raise ValueError(f"unsupported gateway compression {mode!r}")
