"""The client of Kakao's Local API address search, as the old lv1ex DAGs used it.

``GET <base>/v2/local/search/address?query=<address>&size=1`` with ``Authorization: KakaoAK <key>``.
When the whole text finds nothing, the last space-separated word is dropped and the search
repeated, down to one word (the old fallback): ``서울특별시 강남구 역삼동 래미안 101동 1203호``
is found as ``서울특별시 강남구 역삼동``.

Many addresses share those shorter texts (the same district, neighbourhood or building with
another 동/호), so the client remembers the answer of every text it has already searched (an LRU
of ``memo_entries`` answers, for the client's life: one asset's run) and asks the service only
for a text it has not asked yet. Only answers are remembered, never a failure: a text whose search
failed is asked again. An answer depends on the text alone, so a remembered one is what the
service would have said (within one night's run).

The requests go over one kept-open HTTP/1.1 connection (``http.client``), opened again after a
failure or when the service closes it, rather than a new connection (and TLS handshake) each.

The service is called politely and defensively: at most ``requests_per_second``, each request
bounded by ``timeout_seconds``, and a 429, a 5xx, a timeout or a refused connection retried
``retries`` times with exponential backoff (a ``Retry-After`` is honoured). A service still
failing after that raises :class:`GeocoderUnavailable`, naming the service and the last failure;
an answer that refuses the request itself (401, 400, an ``errorType`` body) raises
:class:`GeocoderError` at once. Neither ever holds the key or the address searched.

Settings (``from_environment``): ``BODYFRIEND_KAKAO_URL`` and ``BODYFRIEND_KAKAO_KEY`` (both
required in production; in development an unset URL means the local stand-in, ``standin.py``,
started on first use on 127.0.0.1), ``BODYFRIEND_KAKAO_REQUESTS_PER_SECOND`` (10; the
stand-in's default: 10,000),
``BODYFRIEND_KAKAO_TIMEOUT_SECONDS`` (5), ``BODYFRIEND_KAKAO_RETRIES`` (4),
``BODYFRIEND_KAKAO_BACKOFF_SECONDS`` (1: 1, 2, 4, 8 s between attempts),
``BODYFRIEND_KAKAO_MEMO_ENTRIES`` (20,000 answers remembered; 0: none).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bodyfriend_assets import settings

URL_VAR = "BODYFRIEND_KAKAO_URL"
KEY_VAR = "BODYFRIEND_KAKAO_KEY"
RATE_VAR = "BODYFRIEND_KAKAO_REQUESTS_PER_SECOND"
MEMO_VAR = "BODYFRIEND_KAKAO_MEMO_ENTRIES"
MEMO_ENTRIES = 20_000  # an answer in memory: under 1 KB not found, some 3-5 KB found: under 100 MB
SERVICE = "Kakao Local address search"
SEARCH_PATH = "/v2/local/search/address"
STANDIN_REQUESTS_PER_SECOND = 10_000.0
RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 60.0


class GeocoderError(RuntimeError):
    """The service refused a request; retrying would not help. Holds no key and no address."""


class GeocoderUnavailable(GeocoderError):
    """The service kept failing (429, 5xx, timeouts) through every retry."""


@dataclass
class Search:
    """The outcome of refining one address: the answer's first document (None: nothing found at
    all), ``total_count`` of that answer, and how many words were dropped to find it."""

    document: dict | None
    total_count: int
    words_dropped: int


@dataclass
class KakaoLocal:
    base_url: str
    key: str = field(repr=False)
    requests_per_second: float = 10.0
    timeout_seconds: float = 5.0
    retries: int = 4
    backoff_seconds: float = 1.0
    memo_entries: int = MEMO_ENTRIES
    requests_sent: int = 0
    searches: int = 0  # texts searched, remembered answers included
    _last_request: float = field(default=float("-inf"), repr=False)
    _memo: OrderedDict[str, dict] = field(default_factory=OrderedDict, repr=False)
    _connection: http.client.HTTPConnection | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, development_service: Callable[[], Any] | None = None) -> "KakaoLocal":
        """The client the environment configures. In development, an unset URL means
        ``development_service()``: a local server with ``url`` and ``key`` (``standin.shared_standin``)."""
        base_url = os.environ.get(URL_VAR, "").strip()
        key = os.environ.get(KEY_VAR, "").strip()
        rate = 10.0  # Kakao's; the local stand-in is not rate-limited by default
        if settings.mode() == settings.PRODUCTION:
            for var, value in ((URL_VAR, base_url), (KEY_VAR, key)):
                if not value:
                    raise settings.SettingsError(f"{var} is not set (required in production: {SERVICE})")
        elif not base_url:
            if development_service is None:
                raise settings.SettingsError(f"{URL_VAR} is not set and no local stand-in was given ({SERVICE})")
            server = development_service()
            base_url, key, rate = server.url, server.key, STANDIN_REQUESTS_PER_SECOND
        return cls(
            base_url=base_url.rstrip("/"),
            key=key,
            requests_per_second=settings.positive_setting(RATE_VAR, rate, "number of requests per second"),
            timeout_seconds=settings.seconds_setting("BODYFRIEND_KAKAO_TIMEOUT_SECONDS", 5.0),
            retries=int(settings.positive_setting("BODYFRIEND_KAKAO_RETRIES", 4, "number of retries")),
            backoff_seconds=settings.seconds_setting("BODYFRIEND_KAKAO_BACKOFF_SECONDS", 1.0),
            memo_entries=_memo_entries(),
        )

    def refine(self, address: str) -> Search:
        """Search ``address``, then ever shorter prefixes of it, until something is found."""
        words = address.split()
        for dropped in range(len(words)):
            answer = self.search(" ".join(words[: len(words) - dropped]))
            documents = answer.get("documents") or []
            if documents:
                return Search(documents[0], int(answer.get("meta", {}).get("total_count") or 0), dropped)
        return Search(None, 0, max(len(words) - 1, 0))

    def search(self, query: str) -> dict:
        """The answer to ``query``: remembered, else asked of the service (and then remembered)."""
        self.searches += 1
        answer = self._memo.get(query)
        if answer is not None:
            self._memo.move_to_end(query)
            return answer
        answer = self._ask(query)
        if self.memo_entries > 0:
            self._memo[query] = answer
            if len(self._memo) > self.memo_entries:
                self._memo.popitem(last=False)
        return answer

    def _ask(self, query: str) -> dict:
        """One address search (``size=1``), retried on 429/5xx/timeouts; the decoded answer."""
        target = f"{self._path_prefix()}{SEARCH_PATH}?{urllib.parse.urlencode({'query': query, 'size': 1})}"
        last_failure, last_retry_after = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt, last_retry_after))
                last_retry_after = None
            self._wait_for_rate_limit()
            self.requests_sent += 1
            try:
                status, retry_after, body = self._get(target)
            except (TimeoutError, socket.timeout):
                self.close()  # its answer may still come: the connection is not reusable
                last_failure = f"no answer within {self.timeout_seconds:g}s"
                continue
            except (OSError, http.client.HTTPException) as err:
                self.close()
                last_failure = f"cannot connect ({type(err).__name__})"
                continue
            if status in RETRIED_STATUS:
                last_failure, last_retry_after = f"HTTP {status}", retry_after
                continue
            if not 200 <= status < 300:
                raise GeocoderError(f"{SERVICE} at {self.base_url} refused the request: HTTP {status}"
                                    f"{_error_type(body)}")
            try:
                answer = json.loads(body.decode("utf-8"))
            except ValueError:
                raise GeocoderError(f"{SERVICE} at {self.base_url} answered with something that is not JSON") from None
            if "errorType" in answer:
                raise GeocoderError(f"{SERVICE} at {self.base_url} answered with error {answer['errorType']!r}")
            return answer
        raise GeocoderUnavailable(
            f"{SERVICE} at {self.base_url} is unavailable: {self.retries + 1} attempts failed, "
            f"the last with {last_failure}"
        )

    def _get(self, target: str) -> tuple[int, str | None, bytes]:
        """``GET target`` on the kept-open connection: status, ``Retry-After`` and body. A kept
        connection the server closed meanwhile (idle) is replaced once, at no attempt's cost."""
        reused = self._connection is not None
        try:
            return self._exchange(target)
        except ConnectionError:  # also http.client.RemoteDisconnected: closed before answering
            self.close()
            if not reused:
                raise
            return self._exchange(target)

    def _exchange(self, target: str) -> tuple[int, str | None, bytes]:
        if self._connection is None:
            url = urllib.parse.urlsplit(self.base_url)
            kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            self._connection = kind(url.hostname, url.port, timeout=self.timeout_seconds)
        self._connection.request("GET", target, headers={"Authorization": f"KakaoAK {self.key}"})
        response = self._connection.getresponse()
        body = response.read()
        if response.will_close:
            self.close()
        return response.status, response.getheader("Retry-After"), body

    def _path_prefix(self) -> str:
        return urllib.parse.urlsplit(self.base_url).path.rstrip("/")

    def close(self) -> None:
        """Close the kept-open connection (the next search opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff_seconds * 2 ** (attempt - 1)
        try:
            return max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS)) if retry_after else delay
        except ValueError:
            return delay

    def _wait_for_rate_limit(self) -> None:
        wait = self._last_request + 1.0 / self.requests_per_second - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()


def _memo_entries() -> int:
    """``BODYFRIEND_KAKAO_MEMO_ENTRIES``: a positive number of answers, or 0 for none."""
    if os.environ.get(MEMO_VAR, "").strip() == "0":
        return 0
    return int(settings.positive_setting(MEMO_VAR, MEMO_ENTRIES, "number of remembered answers (or 0)"))


def _error_type(body: bytes) -> str:
    """`` (errorType 'X')`` from an error answer's body, when it has one."""
    try:
        kind = json.loads(body.decode("utf-8")).get("errorType")
    except (ValueError, AttributeError):
        return ""
    return f" (errorType {kind!r})" if isinstance(kind, str) else ""
