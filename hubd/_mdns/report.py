"""The advertiser's status: one value, replaced whole, and a callback on every change."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

State = Literal["probing", "advertising", "conflict-renamed", "stopped", "error"]
Warn = Callable[[str, str], None]


@dataclass(frozen=True)
class AdvertiserStatus:
    """What the advertiser is doing; `hostname` is None until a name is claimed.

    state: "probing" (checking the name is free), "advertising" (under the requested name),
    "conflict-renamed" (another device has the requested name: advertising under
    `hostname` instead), "stopped", or "error" (`last_error` says why; it retries by itself).
    """

    state: State
    requested_name: str
    hostname: str | None
    addresses: tuple[str, ...]
    service_name: str | None
    last_error: str | None
    port: int

    @property
    def url(self) -> str | None:
        return f"http://{self.hostname}:{self.port}/" if self.hostname else None

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["addresses"] = list(self.addresses)
        return data


class StatusBoard:
    """Holds the current status for any thread to read; tells `on_change` about each change."""

    def __init__(
        self,
        initial: AdvertiserStatus,
        on_change: Callable[[AdvertiserStatus], None] | None,
        warn: Warn,
    ) -> None:
        self._status = initial
        self._on_change = on_change
        self._warn = warn
        self._lock = threading.Lock()

    def get(self) -> AdvertiserStatus:
        with self._lock:
            return self._status

    def set(self, **changes: Any) -> None:
        with self._lock:
            new = dataclasses.replace(self._status, **changes)
            if new == self._status:
                return
            self._status = new
        if self._on_change is not None:
            try:
                self._on_change(new)
            except Exception as exc:
                self._warn(
                    f"on-change-{type(exc).__name__}", f"mDNS: the status callback failed: {exc!r}"
                )

    def error(self, key: str, message: str) -> None:
        self._warn(key, f"mDNS: {message}")
        self.set(state="error", last_error=message)
