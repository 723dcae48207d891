"""The ``power:`` and ``meter:`` keys of a cluster file: one table of every driver's and source's keys.

A cluster group or a node may carry ``power: {driver: NAME, ...}`` (how the
testbed switches it) and ``meter: {source: NAME, ...}`` (what meters its
power).  A node's mapping overrides its group's: with its own ``driver:``
(``source:``) it replaces the group's whole; without one it changes or adds
single keys of the group's (a group gives the switch's address and
credentials once, each node its port).  :data:`DRIVER_KEYS` and
:data:`SOURCE_KEYS` say which keys each name takes, of what kind, and which
are required; the drivers and meters in ``rpiaas.power`` read exactly these.

A credential (:data:`~rpiaas.model.SECRET_OPTIONS`) is never echoed in an
error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..auth import REDACTED
from ..model import SECRET_OPTIONS, MeterSpec, PowerSpec
from .errors import did_you_mean
from .source import KeyPath, Source

__all__ = ["DRIVER_KEYS", "SOURCE_KEYS", "Key", "Raw", "merge_power", "parse_meter", "parse_power", "raw",
           "without_credentials"]


@dataclass(frozen=True)
class Key:
    """One option: its kind (``text``, ``directory`` (a path; a relative one is taken from the
    directory of the file that gives it), ``secret``, ``count`` (integer ≥ 1), ``index`` (integer
    ≥ 0), ``seconds`` (> 0), ``number``, ``oid``, ``url``, or ``one of a|b|c``), and whether it
    must be given."""

    kind: str
    required: bool = False


_TIMEOUT = {"timeout_s": Key("seconds")}
_SNMP_AUTH = {
    "host": Key("text", True), "udp_port": Key("count"), "version": Key("one of 2c|3"),
    "community": Key("secret"), "user": Key("text"),
    "auth_protocol": Key("one of md5|sha|sha224|sha256|sha384|sha512"), "auth_key": Key("secret"),
    "priv_protocol": Key("one of des|aes|aes192|aes256"), "priv_key": Key("secret"),
    "retries": Key("index"), **_TIMEOUT,
}
_PLUG = {"flavour": Key("one of tasmota|shelly1|shelly2", True), "url": Key("url", True),
         "relay": Key("index"), "user": Key("text"), "password": Key("secret"), **_TIMEOUT}

DRIVER_KEYS: Mapping[str, Mapping[str, Key]] = {
    "none": {},
    "process": {"state_dir": Key("directory", True), **_TIMEOUT},
    "qemu": {"state_dir": Key("directory", True), **_TIMEOUT},
    "command": {"command": Key("text", True), **_TIMEOUT},
    "uhubctl": {"location": Key("text", True), "port": Key("count", True), "program": Key("text"),
                **_TIMEOUT},
    "http": _PLUG,
    "snmp": {**_SNMP_AUTH, "group": Key("count"), "port": Key("count", True)},
}
SOURCE_KEYS: Mapping[str, Mapping[str, Key]] = {
    "hwmon": {"path": Key("text")},
    "pmic": {},
    "snmp": {**_SNMP_AUTH, "oid": Key("oid", True), "scale": Key("number")},
    "http": _PLUG,
    "prometheus": {"url": Key("url", True), "query": Key("text", True), **_TIMEOUT},
}

_OID = re.compile(r"^\.?[0-2](\.(0|[1-9][0-9]{0,9})){1,127}$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s]*)?$")
_MIN_V3_KEY_CHARS = 8  # RFC 3414: a USM passphrase is at least 8 characters


Raw = tuple[dict[str, Any], dict[str, KeyPath]]  # a mapping as given, and where each key was given


def merge_power(src: Source, path: KeyPath, data: Any, group: Raw | None, name: str) -> Raw | None:
    """A node's ``power:`` (``name`` = "power") or ``meter:`` mapping merged over its group's.

    Returns the merged raw mapping with the key path to blame for each key, or
    ``None`` if neither gives one.
    """
    head = "driver" if name == "power" else "source"
    if data is None:
        return None if group is None else group
    m = src.mapping(path, data)
    where = {key: (*path, key) for key in m}
    if group is None or head in m:
        return dict(m), where
    gdata, gwhere = group
    return {**gdata, **m}, {**gwhere, **where}


def raw(src: Source, path: KeyPath, data: Any) -> Raw:
    """A group's ``power:``/``meter:`` as given, with each key's path (checked once merged)."""
    m = src.mapping(path, data)
    return dict(m), {key: (*path, key) for key in m}


def parse_power(src: Source, at: KeyPath, merged: Raw) -> PowerSpec:
    """A :class:`PowerSpec` from a merged ``power:`` mapping (``at``: the node, blamed for a
    missing key)."""
    head, options = _parse(src, at, merged, "driver", DRIVER_KEYS, "power driver")
    return PowerSpec(head, options)


def parse_meter(src: Source, at: KeyPath, merged: Raw) -> MeterSpec:
    """A :class:`MeterSpec` from a merged ``meter:`` mapping."""
    head, options = _parse(src, at, merged, "source", SOURCE_KEYS, "meter source")
    return MeterSpec(head, options)


def _parse(src: Source, at: KeyPath, merged: Raw, head_key: str,
           table: Mapping[str, Mapping[str, Key]], what: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    data, where = merged
    if head_key not in data:
        src.fail(at, f"missing key {head_key!r} (one of: {', '.join(table)})")
    head = src.string(where[head_key], data[head_key])
    if head not in table:
        src.fail(where[head_key], f"unknown {what} {head!r}{did_you_mean(head, table)} (known: {', '.join(table)})")
    keys = table[head]
    options: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key == head_key:
            continue
        if key not in keys:
            allowed = ", ".join(keys) if keys else "none"
            src.fail(where[key], f"unknown key for {what} {head}{did_you_mean(key, keys)} (expected one of: {allowed})")
        options.append((key, _value(src, where[key], value, keys[key])))
    given = dict(options)
    for key, spec in keys.items():
        if spec.required and key not in given:
            src.fail(at, f"missing key {key!r} ({what} {head} needs it)")
    if "host" in keys:
        _check_snmp(src, where, given)
    return head, tuple(options)


def _value(src: Source, path: KeyPath, value: Any, key: Key) -> Any:
    kind = key.kind
    if kind == "secret":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            src.fail(path, "expected a string (the value is not shown: it is a credential)")
        text = str(src.text(path, value))
        if not text:
            src.fail(path, "expected a non-empty string")
        return text
    if kind == "count":
        return src.integer(path, value, minimum=1)
    if kind == "index":
        return src.integer(path, value, minimum=0)
    if kind == "seconds":
        return src.number(path, value, positive=True)
    if kind == "number":
        return src.number(path, value, positive=True)
    if kind.startswith("one of "):
        options = kind[len("one of "):].split("|")
        text = src.text(path, value)
        return src.choice(path, str(text) if isinstance(text, int) and not isinstance(text, bool) else text,
                          options)
    text = src.string(path, value)
    if kind == "oid" and not _OID.match(text):
        src.fail(path, f"expected a numeric OID like 1.3.6.1.2.1.105.1.1.1.3.1.1, got {text!r}")
    if kind == "url" and not _URL.match(text):
        src.fail(path, f"expected an http:// or https:// URL, got {text!r}")
    if kind in ("text", "directory") and not text:
        src.fail(path, "expected a non-empty string")
    if kind == "directory":  # relative to the file that names it, wherever it is read from
        return str(src.base / text)
    return text.lstrip(".") if kind == "oid" else text


def _check_snmp(src: Source, where: dict[str, KeyPath], given: dict[str, Any]) -> None:
    """The keys an SNMP version needs, and those it cannot use."""
    version = given.get("version", "2c")
    at = where.get("version", where.get("host", ()))
    if version == "2c":
        if "community" not in given:
            src.fail(at, "missing key 'community' (SNMP v2c needs it)")
        for key in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"):
            if key in given:
                src.fail(where[key], "an SNMP v3 key: give version: 3 with it")
        return
    if "community" in given:
        src.fail(where["community"], "SNMP v3 takes user, auth_key and priv_key, not a community")
    if "user" not in given:
        src.fail(at, "missing key 'user' (SNMP v3 needs it)")
    for key, needs in (("auth_protocol", "auth_key"), ("priv_key", "auth_key"),
                       ("priv_protocol", "priv_key")):
        if key in given and needs not in given:
            src.fail(where[key], f"{key} needs {needs}")
    for key in ("auth_key", "priv_key"):
        if key in given and len(given[key]) < _MIN_V3_KEY_CHARS:
            src.fail(where[key], f"an SNMP v3 key has at least {_MIN_V3_KEY_CHARS} characters "
                                 "(the value is not shown)")


def without_credentials(data: Any) -> Any:
    """A copy of ``data`` (a cluster or a scenario, as read) with the credentials of every
    ``power:`` and ``meter:`` mapping in it replaced by ``[redacted]``: what a run directory
    may keep of it."""
    if isinstance(data, list):
        return [without_credentials(v) for v in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("power", "meter") and isinstance(value, dict):
            out[key] = {k: REDACTED if k in SECRET_OPTIONS else v for k, v in value.items()}
        else:
            out[key] = without_credentials(value)
    return out
