"""JSON documents from the network, bounded: size by the caller, nesting depth here.

A request body (or an agent's answer) nested thousands deep makes Python's
JSON decoder, or whatever walks the result, run out of stack.  :func:`loads`
refuses such documents with :class:`ValueError`, as it refuses malformed
JSON, ``NaN`` and ``Infinity``.  The agent client reads agents' answers with
it (a node that answers nonsense has failed); the master's routes read request
bodies with it (:func:`rpiaas.master.http.json_body`) and answer 400 with the message.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

__all__ = ["MAX_JSON_DEPTH", "loads"]

# Scenarios nest about 6 deep (cluster.clusters[].nodes[].{...}); policies' parameters a little
# more.
MAX_JSON_DEPTH = 32


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def depth(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        deepest = max(deepest, level)
        todo.extend((child, level + 1) for child in children)
    return deepest


def loads(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in ``raw``; ValueError (with a message for the caller) if it is not one."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_no_constants)
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8: {e.reason} at byte {e.start}") from None
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} deep") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    # a document cannot nest deeper than it has opening brackets (those in strings only count
    # too many): most have fewer than the bound, and need no walk (a poll's report: a dozen)
    if text.count("[") + text.count("{") > max_depth and depth(data) > max_depth:
        raise ValueError(f"nested more than {max_depth} deep")
    return data
