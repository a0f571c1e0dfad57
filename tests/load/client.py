"""A small HTTP/1.1 client on raw asyncio streams, one keep-alive connection per buyer.

A Python load generator shares the 2 cores with the server it measures, so
it must cost as little CPU per request as possible: no third-party client,
no per-request objects beyond the response, header parsing by hand. It
speaks exactly what a browser running htmx sends: form posts, the session
cookie, the CSRF header, `HX-Request`.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlencode


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class ClientError(Exception):
    """The request got no HTTP answer (refused, reset, timed out)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass
class Browser:
    """One buyer's browser: a connection, its cookies, and the page's CSRF token."""

    host: str
    port: int
    timeout: float = 30.0
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None
    # Keep the connection between requests, as a browser does with a proxy that keeps it (nginx: 75 s).
    keep_alive: bool = False
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    # Requests in flight in the whole client at once (None: no limit), when
    # the machine's open-files limit is below the crowd; a request waiting
    # for its turn counts the wait in its time, as a queue in the network would.
    in_flight: ClassVar[asyncio.Semaphore | None] = None
    # The address this process's connections come from (None: the kernel's choice). Connections to one
    # address and port from one source address share some 28,000 local ports: a crowd that keeps 50,000
    # connections open spreads them over several loopback addresses, as many browsers come from many.
    source: ClassVar[str | None] = None
    # Stamp each request with X-Request-Start as a proxy in front would, so
    # the app's QUEUE_BUDGET_MS can turn away what queued too long.
    stamp_start: ClassVar[bool] = False

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        except asyncio.CancelledError:
            # The wait of a close that a timeout cut short, not this task's
            # cancellation: the socket is closed, there is nothing to wait for.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    async def get(self, path: str, *, htmx: bool = False, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, htmx=htmx, headers=headers)

    async def post(self, path: str, form: dict | list | None = None, *, htmx: bool = True,
                   headers: dict[str, str] | None = None) -> Response:
        body = urlencode(form or {}, doseq=True).encode()
        extra = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.csrf:
            extra["X-CSRFToken"] = self.csrf
        extra.update(headers or {})
        return await self.request("POST", path, body=body, htmx=htmx, headers=extra)

    async def request(self, method: str, path: str, *, body: bytes = b"", htmx: bool = False,
                      headers: dict[str, str] | None = None) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: ticketbooth-bench"]
        if htmx:
            lines.append("HX-Request: true")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        if Browser.in_flight is None:
            return await self._timed(self._raw(lines, body), time.perf_counter())
        async with Browser.in_flight:
            # Timed from when it is sent: the client's own socket limit (one process standing in for many
            # browsers) is no wait a buyer's browser would have.
            return await self._timed(self._raw(lines, body), time.perf_counter())

    @staticmethod
    def _raw(lines: list[str], body: bytes) -> bytes:
        if Browser.stamp_start:
            lines = [*lines, f"X-Request-Start: t={time.time():.6f}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _timed(self, raw: bytes, started: float) -> Response:
        try:
            # A timeout scope, not wait_for: no second task per request (the client drives a whole crowd).
            async with asyncio.timeout(self.timeout):
                return await self._exchange(raw, started)
        except asyncio.TimeoutError:
            await self.close()
            raise ClientError("timeout") from None

    async def _exchange(self, raw: bytes, started: float) -> Response:
        for attempt in range(2):
            reused = self._writer is not None
            if not reused:
                try:
                    self._reader, self._writer = await asyncio.open_connection(
                        self.host, self.port, local_addr=(Browser.source, 0) if Browser.source else None)
                except OSError as error:
                    raise ClientError(f"connect: {type(error).__name__}") from None
            try:
                self._writer.write(raw)
                await self._writer.drain()
                return await self._read_response(started)
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as error:
                await self.close()
                # A keep-alive connection the server had already closed: the
                # request never reached it, so sending again is safe (browsers
                # do the same). A fresh connection that fails is a real error.
                if reused and attempt == 0 and _nothing_received(error):
                    continue
                raise ClientError(f"io: {type(error).__name__}") from None
        raise ClientError("io: retry")

    async def _read_response(self, started: float) -> Response:
        reader = self._reader
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in rest.split("\r\n"):
            if not line:
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            value = value.strip()
            if key == "set-cookie":
                self._store_cookie(value)
            headers[key] = value
        if status in (204, 304) or 100 <= status < 200:
            body = b""  # no body by definition, whatever the headers say
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body, time.perf_counter() - started)

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def _store_cookie(self, value: str) -> None:
        pair, _, attributes = value.partition(";")
        name, _, content = pair.partition("=")
        if "max-age=0" in attributes.lower() or "expires=thu, 01 jan 1970" in attributes.lower():
            self.cookies.pop(name.strip(), None)
        else:
            self.cookies[name.strip()] = content.strip()


def _nothing_received(error: BaseException) -> bool:
    if isinstance(error, asyncio.IncompleteReadError):
        return not error.partial
    return isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))
