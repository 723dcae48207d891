"""Credentials: the master's bearer token and the nodes' tokens derived from one secret.

Imported by the master, the testbeds and the tools that prepare a node's root
from below them all: nothing here needs a web framework.

- The **master token** guards the mutating API (``token_file``): whoever
  holds it runs the testbed.
- A **node token** is HMAC-SHA256 of the node's name keyed with the node
  secret (``node_secret_file``), in hex: :func:`node_token`.  The node's agent
  holds its own token only (``token_file`` of the agent); the master, holding
  the secret, calls each agent with that node's token and accepts a node's
  reports (task ends, its boot) only with it.  One node's token tells nothing
  of another's, nor of the secret.

Tokens are compared as SHA-256 digests, in constant time for the master's
token, and by digest lookup for the nodes' (the digest of what a caller
sends tells nothing of a stored token).  See ``docs/security.md``.

:func:`redact` is the one rule that takes a credential out of a text (a log line, an
error): the master's log filter and the power drivers' errors both use it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

__all__ = ["REDACTED", "NodeTokens", "digest", "node_token", "redact", "same_token"]

REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 6  # shorter "secrets" would redact ordinary words
# the header's value up to the end of its line or of the repr it is quoted in
_HEADER = re.compile(r"(authorization\s*:\s*)[^\r\n'\"]*", re.IGNORECASE)
_BEARER = re.compile(r"(bearer(?:\s|\\x[0-9a-f]{2}|\\[rnt0])+)[^\s'\",;]+", re.IGNORECASE)
# a credential in a URL's query (a Tasmota plug takes its password so), whatever its length
_QUERY = re.compile(r"([?&](?:password|community|auth_key|priv_key|token)=)[^&#\s'\"]*", re.IGNORECASE)


def node_token(secret: str, name: str) -> str:
    """The token of node ``name``: HMAC-SHA256 of its name keyed with ``secret``, in hex.

    ``netboot/prepare-nfsroot.sh --node-secret-file`` and ``rpiaas testbed up
    --local`` write the same into each node's root or directory.
    """
    return hmac.new(secret.encode(), name.encode(), hashlib.sha256).hexdigest()


def digest(token: str) -> bytes:
    # Fixed-length digests hide the expected token's length from a timing observer.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def same_token(given: str, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time."""
    return hmac.compare_digest(digest(given), digest(expected))


class NodeTokens:
    """Every node's token, by name, and the node a presented token belongs to."""

    def __init__(self, secret: str | None, names: Iterable[str]) -> None:
        self.secret = secret
        self.by_name: Mapping[str, str] = (
            {} if secret is None else {name: node_token(secret, name) for name in names})
        self._by_digest = {digest(t): name for name, t in self.by_name.items()}

    def get(self, name: str) -> str | None:
        """Node ``name``'s token (None without a secret or for an unknown node)."""
        return self.by_name.get(name)

    def node_of(self, given: str | None) -> str | None:
        """The node whose token ``given`` is, or None."""
        return None if given is None else self._by_digest.get(digest(given))

    def secrets(self) -> list[str]:
        """What a log line must never show: the secret and every token derived from it."""
        return ([] if self.secret is None else [self.secret]) + list(self.by_name.values())


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with header values, bearer tokens, credentials in URL queries and ``secrets``
    replaced by ``[redacted]``."""
    text = _HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_CHARS and secret in text:
            text = text.replace(secret, REDACTED)
    return text
