"""k6's raw output file as bytes: plain NDJSON or gzip, read in pieces.

Inflated with ISA-L (``isal``), in our own loop over the file so that whatever came before
a cut or corrupt spot is still given (the gzip readers buffer past it). Measured on a 5 s,
130,000-request output (12 MB of gzip, 233 MB of JSON): 0.32 -> 0.06 s of CPU against
the stdlib's zlib.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from isal import isal_zlib

from orchestrator.engines.k6.tally import Tally
from orchestrator.errors import ParseError

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
# Corrupt compressed data (the stub declares the class as an instance).
INFLATE_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]


def gunzip() -> isal_zlib.Decompress:
    """A decompressor for one gzip member."""
    return isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)


def inflated(path: Path, tally: Tally) -> Iterator[bytes]:
    """The file's bytes in pieces of at most CHUNK_BYTES, inflated if it is gzip (members
    one after another, as gzip reads them). A cut or corrupt stream ends the pieces and sets
    ``tally.truncated``; everything inflated before that point has been given."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ParseError(str(path), "open", exc.strerror or str(exc)) from exc
    with handle:
        data = handle.read(CHUNK_BYTES)
        if not data.startswith(GZIP_MAGIC):
            while data:
                yield data
                data = handle.read(CHUNK_BYTES)
            return
        inflate = gunzip()
        try:
            while data:
                while True:
                    out = inflate.decompress(data, CHUNK_BYTES)
                    if out:
                        yield out
                    if inflate.eof:
                        data = inflate.unused_data.lstrip(b"\0")  # gzip skips padding too
                        if not data:
                            break
                        inflate = gunzip()
                        continue
                    data = inflate.unconsumed_tail
                    if not data and len(out) < CHUNK_BYTES:
                        break
                data = handle.read(CHUNK_BYTES)
        except INFLATE_ERROR as exc:
            tally.truncated = f"corrupt compressed data: {exc}"
            return
        except OSError as exc:
            tally.truncated = f"the file could not be read to its end: {exc.strerror or exc}"
            return
        if not inflate.eof:
            tally.truncated = "the compressed stream ends early (cut gzip)"


def iter_blocks(path: Path, tally: Tally) -> Iterator[bytes]:
    """Blocks of whole lines (about CHUNK_BYTES each); a last line without its newline
    comes last."""
    rest = b""
    for piece in inflated(path, tally):
        data = rest + piece
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        rest = data[cut:]
    if rest.strip():
        yield rest
