"""Reading an XML export as a stream of elements, in bounded memory, refusing hostile XML.

defusedxml's iterparse refuses any DTD, so entity expansion ("billion laughs") and external
entities never run. Each caller clears elements it is done with, so memory holds one thread
at a time, whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from .source import ImportFailed

Progress = Callable[[int], None]


class _Counted:
    """A binary file that reports how many bytes were read so far."""

    def __init__(self, raw: IO[bytes], progress: Progress) -> None:
        self.raw = raw
        self.progress = progress
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.done += len(chunk)
        self.progress(self.done)
        return chunk


def local(tag: str) -> str:
    """A tag without its namespace: `{http://disqus.com}post` gives `post`."""
    return tag.rpartition("}")[2]


def events(path: Path, progress: Progress) -> Iterator[tuple[str, Any]]:
    """("start-ns", (prefix, uri)), ("start", element) and ("end", element) of the file.

    Malformed, truncated or hostile input ends the iteration with one ImportFailed line.
    """
    try:
        with path.open("rb") as raw:
            counted = _Counted(raw, progress)
            yield from iterparse(counted, events=("start-ns", "start", "end"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ImportFailed(f"{path.name} was refused: it declares a DTD or entities, which"
                           f" exports never do ({type(exc).__name__})") from None
    except ParseError as exc:
        line, column = exc.position
        why = str(exc).split(":")[0]
        what = "truncated" if why == "no element found" else "not well-formed XML"
        raise ImportFailed(f"{path.name} is {what}: {why} at line {line}, column {column}"
                           ) from None
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path.name} is not valid text: {exc.reason}") from None
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None


def text(element: Element | None, default: str = "") -> str:
    """An element's text (CDATA included), stripped; `default` when absent."""
    if element is None or element.text is None:
        return default
    return element.text.strip()
