"""A small keep-alive HTTP/1.1 GET client on asyncio streams: how the scraper asks every exporter.

One event-loop thread keeps one connection per exporter and has all of a round's requests in flight
at once. requests on a thread pool cost about 0.4 ms of CPU per GET plus a thread hand-off each,
which at 1000 exporters a second is most of a core (docs/scale.md); a GET here is one write and
one or two reads. It speaks just what an exporter answers with: a status line, headers, and a body
framed by Content-Length, chunked transfer coding, or the end of the connection; anything it cannot
read is an error that closes the connection (the next GET opens a new one).
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024  # status line and headers


class FetchError(Exception):
    """The exporter could not be asked or its answer could not be read; the message says how."""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Origin:
    """Where a URL's requests go: scheme, host, port, and the Host header."""

    scheme: str
    host: str
    port: int
    netloc: str

    @classmethod
    def of(cls, url: str) -> tuple[Origin, str]:
        """The origin of `url` and its path (with the query)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, parts.netloc), path


class Connection:
    """One keep-alive connection to one origin, opened on the first GET; one GET at a time."""

    def __init__(self, origin: Origin, *, max_body: int, user_agent: str = "swarmguard-controller") -> None:
        self.origin = origin
        self._max_body = max_body
        self._user_agent = user_agent
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, *, timeout: float, accept: str = "*/*") -> Answer:
        """GETs `path`; FetchError (connection closed) for anything but a readable answer in time."""
        try:
            async with asyncio.timeout(timeout):
                return await self._get(path, accept)
        except FetchError:
            self.close()
            raise
        except TimeoutError:
            self.close()
            raise FetchError(f"no answer within {timeout:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise FetchError(f"{type(exc).__name__}: {exc}") from None

    async def _get(self, path: str, accept: str) -> Answer:
        if self._writer is None or self._reader is None or self._reader.at_eof():
            self.close()
            context = ssl.create_default_context() if self.origin.scheme == "https" else None
            self._reader, self._writer = await asyncio.open_connection(
                self.origin.host, self.origin.port, ssl=context, limit=MAX_HEAD)
        reader, writer = self._reader, self._writer
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.origin.netloc}\r\nUser-Agent: {self._user_agent}\r\n"
                     f"Accept: {accept}\r\nAccept-Encoding: identity\r\n\r\n".encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise FetchError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep:
                    raise FetchError(f"malformed header line: {line[:80]!r}")
                headers[name.strip().lower()] = value.strip()
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= self._max_body:
                raise FetchError(f"body of {length} bytes, at most {self._max_body} read")
            body = await reader.readexactly(length)
        else:  # the body ends with the connection
            body = await reader.read(self._max_body + 1)
            while len(body) <= self._max_body and not reader.at_eof():
                body += await reader.read(self._max_body + 1 - len(body))
            if len(body) > self._max_body:
                raise FetchError(f"body over {self._max_body} bytes")
            keep = False
        if not keep:
            self.close()
        return Answer(status=status, content_type=headers.get("content-type", ""), body=body)

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > self._max_body:
                raise FetchError(f"body over {self._max_body} bytes")
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise FetchError("malformed chunk")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
