"""No credential reaches a log line: headers, bearer tokens and known secrets are redacted."""

from __future__ import annotations

import logging

from rpiaas.master.redact import REDACTED, Redactor, redact


def test_headers_bearer_tokens_and_secrets_are_redacted() -> None:
    assert redact("Authorization: Bearer abc123") == f"Authorization: {REDACTED}"
    assert redact("b'bearer\\x20tok-9'") == f"b'bearer\\x20{REDACTED}'"
    assert redact("the node secret is s3cr3t-value", ["s3cr3t-value"]) == \
        f"the node secret is {REDACTED}"
    assert redact("a short one: abc", ["abc"]) == "a short one: abc"  # would hide ordinary words


def test_the_filter_rewrites_message_arguments_and_traceback() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s failed", ("tok-secret-1",),
                               None)
    try:
        raise ValueError("tok-secret-1 in an exception")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert Redactor(lambda: ["tok-secret-1"]).filter(record)
    assert record.getMessage() == f"token {REDACTED} failed"
    assert record.exc_text is not None and "tok-secret-1" not in record.exc_text
    assert REDACTED in record.exc_text
