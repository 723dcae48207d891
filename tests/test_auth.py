"""Tokens: each node's derived from the node secret, compared in constant time, found by token."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp.test_utils import make_mocked_request

from rpiaas.auth import NodeTokens, node_token, same_token
from rpiaas.master.http import bearer


def test_a_nodes_token_is_the_hmac_of_its_name() -> None:
    expected = hmac.new(b"secret-1", b"node1.c.test", hashlib.sha256).hexdigest()
    assert node_token("secret-1", "node1.c.test") == expected
    assert node_token("secret-1", "node2.c.test") != expected
    assert node_token("secret-2", "node1.c.test") != expected


def test_same_token() -> None:
    assert same_token("abc", "abc")
    assert not same_token("abc", "abd") and not same_token("ab", "abc")
    assert not same_token("\udcff", "x")  # not UTF-8 encodable: compared, not raised on


def test_node_tokens_by_name_and_by_token() -> None:
    tokens = NodeTokens("the-node-secret", ["a.test", "b.test"])
    assert tokens.get("a.test") == node_token("the-node-secret", "a.test")
    assert tokens.get("c.test") is None
    assert tokens.node_of(tokens.get("b.test")) == "b.test"
    assert tokens.node_of("wrong") is None and tokens.node_of(None) is None
    assert tokens.secrets() == ["the-node-secret", tokens.get("a.test"), tokens.get("b.test")]
    off = NodeTokens(None, ["a.test"])
    assert off.get("a.test") is None and off.secrets() == []


def test_bearer_header() -> None:
    def req(value: str | None) -> str | None:
        headers = {} if value is None else {"Authorization": value}
        return bearer(make_mocked_request("GET", "/", headers=headers))

    assert req("Bearer abc") == "abc"
    assert req("bearer   abc  ") == "abc"
    assert req("Basic abc") is None and req("Bearer ") is None and req(None) is None


def test_redact_takes_credentials_out_of_a_url_query_whatever_their_length() -> None:
    from rpiaas.auth import redact

    url = "GET http://192.0.2.21/cm?cmnd=Power1%20Off&user=admin&password=pw1 failed"
    assert redact(url) == "GET http://192.0.2.21/cm?cmnd=Power1%20Off&user=admin&password=[redacted] failed"
    assert redact("x?community=abc&b=2") == "x?community=[redacted]&b=2"
    assert redact("the password is short") == "the password is short"
