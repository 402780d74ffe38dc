"""moto's request dispatch: speed, not behaviour.

**AWS.** What a call costs does not depend on how the service is implemented: the bridge's
SendMessage, ReceiveMessage and SendTaskSuccess are each "a nearly unlimited number of API calls
per second" (SQS developer guide, "Amazon SQS standard queues") or a fixed quota (Step Functions
developer guide, "Step Functions service quotas").

**moto 5.2.5.** Every request, whatever its service, lists the response class's methods with
``inspect.getmembers`` (hundreds of attributes, each tested with ``isfunction``) to find out
whether the action is one it implements, an answer that never changes while the class does
not. And every SendMessage reads a queue's attributes, converting each of their 14 names from
CamelCase with a character-by-character loop, for the same 14 answers every time. Every response
carries a 52-character request id, and every received message a 185-character receipt handle,
each drawn with one ``random.choice`` call per character. Every
response's body, JSON included, is searched with a look-behind regular expression for an XML
``<RequestId>`` element. And on the callers' side, botocore cleans each component of every
request's User-Agent header one character at a time.

**The patches** remember the list per class, filled on a class's first request (by then
``compat.apply`` has put every other patch's methods in place), and memoise the name
conversion where those two calls make it; both are forgotten on revert. Random strings are
drawn from one ``randbytes`` call each, of the same seedable generator (``mock_random``), over
the same alphabet and length. The request id goes into bodies that have the element, and the
cleaned User-Agent components are memoised.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect


def method_names_cache() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 lists a response class's methods on every request to
    check the action exists (see the module docstring; AWS's cost per call is fixed, SQS
    developer guide, "Amazon SQS standard queues"). The patch memoises the list per class."""
    from moto.core import responses

    original = expect(responses, "method_names_from_class")
    names: dict[Any, list[str]] = {}
    lock = threading.Lock()

    def method_names_from_class(clazz: Any) -> list[str]:
        try:
            return names[clazz]
        except KeyError:
            listed = original(clazz)
            with lock:
                names[clazz] = listed
            return listed

    return [Replacement(responses, "method_names_from_class", method_names_from_class)]


def camelcase_cache() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 converts the same attribute and action names from
    CamelCase on every request (a SendMessage reads 14 queue attributes; see the module
    docstring; AWS's cost per call is fixed, SQS developer guide, "Amazon SQS standard
    queues"). The conversion is a pure function of its string: memoised where the request path
    calls it, in moto's base response and its SQS models."""
    from moto.core import responses
    from moto.sqs import models

    return [
        Replacement(
            owner,
            "camelcase_to_underscores",
            functools.lru_cache(maxsize=1024)(expect(owner, "camelcase_to_underscores")),
        )
        for owner in (responses, models)
    ]


def _drawn(generator: Any, alphabet: str, length: int) -> str:
    """``length`` characters of ``alphabet`` from ``generator``'s random bytes, in one call:
    each byte picks ``alphabet[byte % len(alphabet)]``."""
    table = _tables.get(alphabet)
    if table is None:
        table = _tables[alphabet] = bytes(ord(alphabet[i % len(alphabet)]) for i in range(256))
    return generator.randbytes(length).translate(table).decode("ascii")  # type: ignore[no-any-return]


_tables: dict[str, bytes] = {}


def random_strings() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 draws request ids and receipt handles one character
    per ``random.choice`` call (see the module docstring; AWS's cost per call is fixed, SQS
    developer guide, "Amazon SQS standard queues"). The patch draws each string's characters
    from one ``randbytes`` call of the same generator, over the same alphabet and length:
    still random (each byte picks a character: 256 byte values over 26 to 62 characters make
    some characters up to a quarter likelier than others, which nothing reads), still
    reproducible when moto's generator is seeded (the sequence differs from moto's)."""
    import string

    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom
    from moto.sqs import models, utils

    expect(MotoRandom, "get_random_string")
    length = 185  # moto's, and AWS's documented maximum is 1,024 characters

    def get_random_string(
        self: MotoRandom, length: int = 20, include_digits: bool = True, lower_case: bool = False
    ) -> str:
        drawn = _drawn(self, string.ascii_letters + string.digits * include_digits, length)
        return drawn.lower() if lower_case else drawn

    def generate_receipt_handle() -> str:
        return _drawn(mock_random, string.ascii_lowercase, length)

    return [
        Replacement(MotoRandom, "get_random_string", get_random_string),
        *(
            Replacement(owner, "generate_receipt_handle", generate_receipt_handle)
            for owner in (utils, models)
        ),
    ]


def request_id_substitution() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 writes each response's request id into its body with a
    look-behind regular expression over the whole body, even a JSON body that has no
    ``<RequestId>`` element (see the module docstring; AWS's cost per call is fixed, SQS
    developer guide, "Amazon SQS standard queues"). The patch runs the substitution only on a
    text body that has one; the headers get their request id as before."""
    from moto.core import responses

    original = expect(responses.BaseResponse, "_enrich_response")

    def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" in body:
            return original(headers, body)  # type: ignore[no-any-return]
        headers, _ = original(headers, "")
        return headers, body

    return [Replacement(responses.BaseResponse, "_enrich_response", staticmethod(_enrich_response))]


def user_agent_cache() -> list[Replacement]:
    """Speed, not behaviour: not moto's but botocore's, in the clients that run in the embedded
    stack's process beside moto (its interpreter, event source mappings and completion
    handler). botocore builds every request's User-Agent header anew, cleaning each of its
    components character by character, for the same few dozen strings (see the module
    docstring; AWS's cost per call is fixed, SQS developer guide, "Amazon SQS standard
    queues"). The cleaning is a pure function of its arguments: memoised."""
    from botocore import useragent

    clean = expect(useragent, "sanitize_user_agent_string_component")
    return [
        Replacement(
            useragent,
            "sanitize_user_agent_string_component",
            functools.lru_cache(maxsize=1024)(clean),
        )
    ]


PATCHES: list[Patch] = [
    Patch(
        "moto-method-names-cache",
        "a response class's methods are listed once, not per request",
        method_names_cache,
    ),
    Patch(
        "moto-camelcase-cache",
        "attribute and action names are converted from CamelCase once, not per request",
        camelcase_cache,
    ),
    Patch(
        "moto-random-strings",
        "request ids and receipt handles are drawn in one call each, not one per character",
        random_strings,
    ),
    Patch(
        "moto-request-id-substitution",
        "a response's request id is written into the bodies that have a RequestId element",
        request_id_substitution,
    ),
    Patch(
        "botocore-user-agent-cache",
        "a User-Agent component is cleaned once, not on every request",
        user_agent_cache,
    ),
]
