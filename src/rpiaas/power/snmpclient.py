"""SNMP GET and SET for the ``snmp`` driver and meter, over pysnmp's asyncio API (v2c and v3).

The options (``host``, ``udp_port`` (161), ``version`` (``2c`` or ``3``),
``community``; for v3 ``user``, ``auth_protocol`` (md5, sha, sha224, sha256,
sha384, sha512; default sha), ``auth_key``, ``priv_protocol`` (des, aes,
aes192, aes256; default aes), ``priv_key``; ``timeout_s`` (2 s) and
``retries`` (1)) come from the cluster file.  Each call has its own SNMP
engine, closed after it: power calls are rare, and no socket or engine
outlives the call.  The whole call, retries included, is bounded by
``timeout_s × (retries + 1)`` and a second more.

A wrong v2c community gets no answer at all (agents drop such requests), so
it reads as a timeout: the message says both.  Every message is one line
without the community or the keys.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..model import MeterSpec, PowerSpec
from .base import PowerError
from .calls import failure

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT_S", "SnmpTarget"]

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_RETRIES = 1
_AUTH = {"md5": "USM_AUTH_HMAC96_MD5", "sha": "USM_AUTH_HMAC96_SHA", "sha224": "USM_AUTH_HMAC128_SHA224",
         "sha256": "USM_AUTH_HMAC192_SHA256", "sha384": "USM_AUTH_HMAC256_SHA384",
         "sha512": "USM_AUTH_HMAC384_SHA512"}
_PRIV = {"des": "USM_PRIV_CBC56_DES", "aes": "USM_PRIV_CFB128_AES", "aes192": "USM_PRIV_CFB192_AES_BLUMENTHAL",
         "aes256": "USM_PRIV_CFB256_AES_BLUMENTHAL"}


class SnmpTarget:
    """One agent, with the credentials to talk to it."""

    def __init__(self, node: str, name: str, spec: PowerSpec | MeterSpec) -> None:
        self.node = node
        self.name = name
        self.host = str(spec.get("host"))
        self.udp_port = int(spec.get("udp_port", 161))
        self.timeout_s = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.retries = int(spec.get("retries", DEFAULT_RETRIES))
        self.spec = spec
        self.secrets = spec.secrets()

    @property
    def where(self) -> str:
        return f"{self.host}:{self.udp_port}"

    def fail(self, action: str, why: str) -> PowerError:
        return failure(self.node, self.name, action, why, self.secrets)

    def _auth(self, hlapi: Any) -> Any:
        spec = self.spec
        if str(spec.get("version", "2c")) == "2c":
            return hlapi.CommunityData(str(spec.get("community")), mpModel=1)
        auth_key, priv_key = spec.get("auth_key"), spec.get("priv_key")
        return hlapi.UsmUserData(
            str(spec.get("user")),
            authKey=None if auth_key is None else str(auth_key),
            privKey=None if priv_key is None else str(priv_key),
            authProtocol=(getattr(hlapi, _AUTH[str(spec.get("auth_protocol", "sha"))])
                          if auth_key is not None else hlapi.USM_AUTH_NONE),
            privProtocol=(getattr(hlapi, _PRIV[str(spec.get("priv_protocol", "aes"))])
                          if priv_key is not None else hlapi.USM_PRIV_NONE))

    async def call(self, action: str, oid: str, value: int | None = None) -> Any:
        """GET ``oid`` (or SET it to the integer ``value``); the value the agent answered."""
        bound_s = self.timeout_s * (self.retries + 1) + 1.0
        try:
            return await asyncio.wait_for(self._call(action, oid, value), bound_s)
        except asyncio.TimeoutError:
            raise self.fail(action, f"no answer from {self.where} within {bound_s:g} s") from None

    async def _call(self, action: str, oid: str, value: int | None) -> Any:
        from pysnmp.error import PySnmpError
        from pysnmp.hlapi.v3arch import asyncio as hlapi
        from pysnmp.proto.rfc1902 import Integer32

        engine = hlapi.SnmpEngine()
        try:
            try:
                target = await hlapi.UdpTransportTarget.create(
                    (self.host, self.udp_port), timeout=self.timeout_s, retries=self.retries)
                object_type = (hlapi.ObjectType(hlapi.ObjectIdentity(oid)) if value is None else
                               hlapi.ObjectType(hlapi.ObjectIdentity(oid), Integer32(value)))
                command = hlapi.get_cmd if value is None else hlapi.set_cmd
                indication, status, _index, binds = await command(
                    engine, self._auth(hlapi), target, hlapi.ContextData(), object_type, lookupMib=False)
            except PySnmpError as e:
                raise self.fail(action, f"{self.where}: {e}") from None
            except OSError as e:
                raise self.fail(action, f"{self.where}: {e.strerror or e}") from None
        finally:
            engine.close_dispatcher()
        if indication:
            why = str(indication)
            if "timeout" in why.lower():
                version = str(self.spec.get("version", "2c"))
                why = (f"no answer from {self.where} after {self.retries + 1} tries of {self.timeout_s:g} s"
                       + (" (wrong community, or no agent there)" if version == "2c" else ""))
            else:
                why = f"{self.where}: {why}"
            raise self.fail(action, why)
        if status:
            raise self.fail(action, f"{self.where} refused {'SET' if value is not None else 'GET'} of {oid}: "
                                    f"{status.prettyPrint()}")
        (_, answer), = binds
        kind = type(answer).__name__
        if kind in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            raise self.fail(action, f"{self.where} has no {oid} ({kind})")
        return answer
