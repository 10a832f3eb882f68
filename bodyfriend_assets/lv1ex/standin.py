"""A local stand-in for Kakao's Local address search: ``make demo``, ``make dev`` and the tests
refine addresses without the internet and without a key.

An ``http.server`` on 127.0.0.1 (a free port) answering ``GET /v2/local/search/address`` like
Kakao, deterministically from the query text:

- a query whose first word is a province or a city (``...시``, ``...도``) and whose other words
  are districts and neighbourhoods (``...구``, ``...군``, ``...동``, ``...읍``, ``...면``,
  ``...리``, ``...가``) is found as a lot address (``address`` only, no road address);
- such a query followed by a lot number (``123-4``) or by an apartment name of the demo
  generator (``래미안``) is found with a road address too (building name, postal code);
- anything else (a first word that is no place, a word that is neither) finds nothing, so the
  client's fallback drops words until what is left is found, or nothing is.

Every answer depends on the query alone. ``fail_next(n, kind)`` makes the next ``n`` requests
answer 429, 500 or hang past the client's timeout (``"timeout"``); ``requests`` counts them,
``queries`` keeps the texts and ``connections`` counts the connections opened (HTTP/1.1: kept
open until the client closes them or ``close_connections``). A request without ``Authorization: KakaoAK <key>`` gets a 401.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import socket
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bodyfriend_assets.demo.generator import VOCABULARY
from bodyfriend_assets.lv1ex.kakao import SEARCH_PATH

PLACE_SUFFIXES = ("구", "군", "동", "읍", "면", "리", "가")
TOP_SUFFIXES = ("시", "도")
APARTMENTS = frozenset(VOCABULARY["apartment"])
FAULTS = ("429", "500", "timeout")


class KakaoStandIn:
    """The stand-in server, running in a daemon thread until ``stop``."""

    def __init__(self, key: str | None = None, hang_seconds: float = 3.0):
        self.key = key or secrets.token_hex(16)
        self.hang_seconds = hang_seconds
        self.requests = 0
        self.connections = 0
        self.queries: list[str] = []
        self._open: set[socket.socket] = set()
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kakao-standin", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, count: int, kind: str) -> None:
        if kind not in FAULTS:
            raise ValueError(f"a stand-in fault is one of {', '.join(FAULTS)} (got {kind!r})")
        with self._lock:
            self._faults.extend([kind] * count)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests, self.connections, self.queries = 0, 0, []

    def close_connections(self) -> None:
        """Close the connections kept open, as a server does with idle ones."""
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):  # closed by the client meanwhile
                    connection.shutdown(socket.SHUT_RDWR)

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, query: str) -> str | None:
        with self._lock:
            self.requests += 1
            self.queries.append(query)
            return self._faults.popleft() if self._faults else None


def answer(query: str) -> dict:
    """Kakao's answer to ``query`` (size=1), as described in the module docstring."""
    words = query.split()
    regions = 1
    while regions < len(words) and words[regions].endswith(PLACE_SUFFIXES) and not words[regions][0].isdigit():
        regions += 1
    rest = words[regions:]
    if not words or not words[0].endswith(TOP_SUFFIXES) or len(rest) > 1:
        return {"meta": {"total_count": 0, "pageable_count": 0, "is_end": True}, "documents": []}
    building = rest[0] if rest and rest[0] in APARTMENTS else ""
    if rest and not building and not _lot_number(rest[0]):
        return {"meta": {"total_count": 0, "pageable_count": 0, "is_end": True}, "documents": []}
    digest = int(hashlib.sha256(query.encode("utf-8")).hexdigest(), 16)
    x, y = f"{126.8 + digest % 10_000 / 20_000:.6f}", f"{37.4 + digest // 10_000 % 10_000 / 20_000:.6f}"
    region = {f"region_{n + 1}depth_name": (words[n] if n < regions else "") for n in range(3)}
    lot = {"address_name": " ".join(words), **region, "region_3depth_h_name": region["region_3depth_name"],
           "x": x, "y": y}
    road = None
    if rest:
        road = {"address_name": f"{' '.join(words[:regions])} {digest % 90 + 10}길 {digest % 300 + 1}",
                **region, "building_name": building, "zone_no": f"{digest % 63_000 + 1_000:05d}", "x": x, "y": y}
    document = {"address_name": lot["address_name"], "address_type": "REGION_ADDR" if not rest else "ROAD_ADDR",
                "x": x, "y": y, "address": lot, "road_address": road}
    total = 1 + digest % 3
    return {"meta": {"total_count": total, "pageable_count": total, "is_end": True}, "documents": [document]}


def _lot_number(word: str) -> bool:
    return word.replace("-", "").isdigit()


def _handler(standin: KakaoStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection open, as Kakao's server does

        def setup(self) -> None:
            super().setup()
            # the head and the body are two writes: without this, on a kept connection the
            # body waits for the client's delayed ACK of the head (Nagle), some 40 ms a request
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            standin._opened(self.connection)

        def finish(self) -> None:
            standin._closed(self.connection)
            super().finish()

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
            fault = standin._next(query)
            if url.path != SEARCH_PATH:
                return self._send(404, {"errorType": "NotFound", "message": "unknown path"})
            if self.headers.get("Authorization") != f"KakaoAK {standin.key}":
                return self._send(401, {"errorType": "AccessDeniedError", "message": "wrong key"})
            if fault == "timeout":
                time.sleep(standin.hang_seconds)
                return self._send(504, {"errorType": "Timeout"})
            if fault:
                return self._send(int(fault), {"errorType": "RequestThrottled" if fault == "429" else "InternalError"})
            self._send(200, answer(query))

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                pass

        def log_message(self, format: str, *args) -> None:  # quiet: queries are customers' addresses
            pass

    return Handler


_shared: KakaoStandIn | None = None
_shared_lock = threading.Lock()


def shared_standin() -> KakaoStandIn:
    """The process's stand-in (development mode with no ``BODYFRIEND_KAKAO_URL``), started on
    first use, as the embedded PostgreSQL server is; it stops with the process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = KakaoStandIn()
        return _shared
