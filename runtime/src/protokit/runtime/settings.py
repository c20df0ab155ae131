"""Server settings, with every field readable from a `PROTOKIT_*` environment variable (`PROTOKIT_<FIELD>`;
the port also from `PORT`). What each one means, and its default, is the table in protokit's README
(tests/test_runtime_limits.py checks that it lists every field with its default).

Booleans accept 1/0, true/false, yes/no, on/off; an empty variable counts as unset.

A setting that is malformed, out of range or inconsistent raises `ConfigError` naming the variable (or the
field, for settings made in code); `run()` prints it as one line and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigError", "ServerSettings", "active_settings"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """A setting or a file it names is unusable: one line for the operator, naming the variable or file."""


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false, yes/no, on/off), got {text!r}")


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text!r}")
    return value


def _str(text: str) -> str:
    return text.strip()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": _str,
    "port": _int,
    "tls_cert": _str,
    "tls_key": _str,
    "tls_client_ca": _str,
    "reflection": _bool,
    "reflection_public": _bool,
    "reuse_port": _bool,
    "metrics_port": _int,
    "grace_period": _float,
    "max_message_bytes": _int,
    "keepalive_time": _float,
    "keepalive_timeout": _float,
    "max_concurrent_streams": _int,
    "max_connection_idle": _float,
    "max_connection_age": _float,
    "max_connection_age_grace": _float,
    "max_deadline": _float,
    "max_stream_deadline": _float,
    "stream_buffer": _int,
    "keep_unknown_fields": _bool,
    "gzip": _bool,
    "log_level": _str,
    "log_format": _str,
    "auth_tokens_file": _str,
    "rate_limit": _float,
    "rate_burst": _int,
    "tracing": _bool,
}


def _port_problem(value: int | None, allow_none: bool) -> str | None:
    if value is None:
        return None if allow_none else "is required"
    if not 0 <= value <= 65535:
        return f"must be a port number 0..65535, got {value}"
    return None


# Limits where 0 means "no limit".
_NON_NEGATIVE = frozenset(
    {"max_connection_idle", "max_connection_age", "max_connection_age_grace", "max_deadline", "max_stream_deadline"}
)


def _field_problem(name: str, value: Any) -> str | None:
    """Why a single field value is invalid, or None."""
    if name == "port":
        return _port_problem(value, allow_none=False)
    if name == "metrics_port":
        return _port_problem(value, allow_none=True)
    if name == "host":
        return "must not be empty" if not value else None
    if name in ("grace_period", "keepalive_timeout", "keepalive_time") and value is not None:
        positive = name != "grace_period"
        if value < 0 or (positive and value == 0):
            return f"must be {'> 0' if positive else '>= 0'}, got {value}"
    if name in _NON_NEGATIVE and value < 0:
        return f"must be >= 0 (0 turns it off), got {value}"
    if name in ("max_message_bytes", "max_concurrent_streams", "stream_buffer") and value <= 0:
        return f"must be > 0, got {value}"
    if name == "log_format" and value not in LOG_FORMATS:
        return f"must be one of {', '.join(LOG_FORMATS)}, got {value!r}"
    if name == "auth_tokens_file" and value is not None and not value:
        return "must not be empty"
    if name == "rate_limit" and value is not None and value <= 0:
        return f"must be > 0 requests/s, got {value}"
    if name == "rate_burst" and value is not None and value < 1:
        return f"must be >= 1, got {value}"
    if name == "log_level" and str(value).upper() not in _LEVELS:
        return f"must be one of {', '.join(_LEVELS)}, got {value!r}"
    return None


def _combination_problem(values: Mapping[str, Any], label: Callable[[str], str]) -> str | None:
    """Why fields that only make sense together are inconsistent, or None."""
    cert, key, client_ca = (values.get(name) for name in ("tls_cert", "tls_key", "tls_client_ca"))
    if bool(cert) != bool(key):
        return f"{label('tls_cert')} and {label('tls_key')} must be set together"
    if client_ca and not cert:
        return f"{label('tls_client_ca')} (mTLS) needs {label('tls_cert')} and {label('tls_key')}"
    return None


@dataclass(frozen=True)
class ServerSettings:
    """How a `Server` listens and behaves; see the module docstring for the environment variables."""

    host: str = "127.0.0.1"
    port: int = 50051
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    reflection: bool = True
    reflection_public: bool = False
    # SO_REUSEPORT: a second server may bind the port while this one drains. Off by default (two servers
    # would split the traffic silently); `protokit dev` turns it on to restart without a gap.
    reuse_port: bool = False
    metrics_port: int | None = None
    grace_period: float = 10.0
    max_message_bytes: int = 4 * 1024 * 1024
    keepalive_time: float = 60.0
    keepalive_timeout: float = 20.0
    max_concurrent_streams: int = 100
    max_connection_idle: float = 600.0
    max_connection_age: float = 1800.0
    max_connection_age_grace: float = 30.0
    max_deadline: float = 300.0
    max_stream_deadline: float = 0.0
    stream_buffer: int = 1000
    keep_unknown_fields: bool = False
    gzip: bool = True
    log_level: str = "INFO"
    log_format: str = "text"
    auth_tokens_file: str | None = None
    rate_limit: float | None = None
    rate_burst: int | None = None
    tracing: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            problem = _field_problem(f.name, getattr(self, f.name))
            if problem:
                raise ConfigError(f"ServerSettings.{f.name} {problem}")
        problem = _combination_problem(dataclasses.asdict(self), lambda name: f"ServerSettings.{name}")
        if problem:
            raise ConfigError(problem)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def effective_rate_burst(self) -> int:
        """The bucket size: rate_burst, or one second's worth of rate_limit."""
        if self.rate_burst is not None:
            return self.rate_burst
        return max(1, math.ceil(self.rate_limit or 1))

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level.upper()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Defaults, overridden by `PROTOKIT_*` variables of `env` (os.environ if None), overridden by `overrides`.

        A malformed or out-of-range variable raises ConfigError (a ValueError) naming the variable.
        """
        source = os.environ if env is None else env
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"ServerSettings has no field {', '.join(unknown)}")
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name, parse in _PARSERS.items():
            var = f"PROTOKIT_{name.upper()}"
            text = source.get(var, "")
            if not text.strip() and name == "port":
                var, text = "PORT", source.get("PORT", "")
            if not text.strip():
                continue
            try:
                value = parse(text)
            except ValueError as exc:
                raise ConfigError(f"{var}: {exc}") from None
            problem = _field_problem(name, value)
            if problem:
                raise ConfigError(f"{var} {problem}")
            values[name] = value
            origin[name] = var
        values.update(overrides)
        origin.update({name: f"ServerSettings.{name}" for name in overrides})
        # Check combinations first, naming the variables: a message the operator can act on.
        problem = _combination_problem(values, lambda name: origin.get(name, f"PROTOKIT_{name.upper()}"))
        if problem:
            raise ConfigError(problem)
        return cls(**values)  # validates the overrides too


_active: ServerSettings | None = None


def activate(settings: ServerSettings) -> None:
    """Record the settings of the server being started (what `active_settings()` returns)."""
    global _active
    _active = settings


def active_settings() -> ServerSettings:
    """The settings of the server started last in this process, else the defaults: lets parts that services
    create before the server exists (a `Fanout`) follow the server's settings."""
    return _active if _active is not None else ServerSettings()
