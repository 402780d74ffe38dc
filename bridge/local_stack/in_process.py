"""Calls made inside the embedded stack's own process, answered without HTTP.

On AWS, Step Functions' SQS integration and Lambda's event source mapping are part of the
services: they cost the caller nothing. In the embedded stack they share one Python process (and
one GIL) with moto's server, and over loopback HTTP each of their calls would pay twice:
botocore's urllib3 and ``http.client`` on the way out, werkzeug's request parsing, Flask and a
server thread on the way in.

:class:`InProcessTransport` answers such a client's requests the way moto's own in-process mode
(``mock_aws``) does: a botocore ``before-send`` hook hands the signed request to moto's response
classes for that service, which run the same backend code the server runs. Everything up to
the wire is unchanged (parameter serialisation, ``before-call`` hooks that tests use to inject
faults, response parsing) but the signature: moto never checks one, so SigV4's hashing would
be CPU spent for nothing. What moto *does* read from a signature, the credential scope (an
SQS request's region, the access key that names the account), is still sent, in an
``Authorization`` header with the scope and no signature. moto reads each request as it would
have arrived over HTTP (addressed to the server, so the queue URLs it names are the server's),
and the server's :class:`~bridge.local_stack.requests.RequestCounter` counts it and shows it to
its observers.

Only requests addressed to the embedded server are answered here; a client pointed anywhere else
(the chaos campaign's fault proxy) keeps its HTTP.
"""

from __future__ import annotations

import functools
import io
import re
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from bridge.local_stack.requests import RequestCounter

#: What moto's handlers return: status, headers, body.
MotoResponse = tuple[int, dict[str, str], str | bytes]


class InProcessTransport:
    """Attach to the clients of in-process callers with :meth:`attach`."""

    def __init__(
        self, endpoint_urls: tuple[str, ...], counter: RequestCounter | None = None
    ) -> None:
        #: The embedded server's addresses (moto's interpreter calls it ``localhost``).
        self.endpoint_urls = tuple(url.rstrip("/") for url in endpoint_urls)
        self.counter = counter

    def attach(self, client: Any) -> Any:
        """Answer ``client``'s requests to the embedded server in this process; returns it."""
        meta = client.meta
        host = f"https://{meta.service_model.endpoint_prefix}.{meta.region_name}.amazonaws.com"
        scope = functools.partial(_credential_scope, client)
        meta.events.register_first(
            "before-send", functools.partial(self._send, aws_host=host, scope=scope)
        )
        if self._endpoint_of(meta.endpoint_url) is not None:
            meta.events.register_first("choose-signer", _unsigned)
        return client

    def _send(
        self,
        request: AWSPreparedRequest,
        aws_host: str,
        scope: Callable[[], str],
        **_: Any,
    ) -> AWSResponse | None:
        from moto.core.botocore_stubber import MockRawResponse

        endpoint = self._endpoint_of(request.url)
        if endpoint is None:
            return None  # addressed elsewhere: HTTP as usual
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = scope()
        # The request moto's response classes read, addressed to the server as over HTTP (a
        # queue's URL names the host it was asked on); its environ is what the counter sees.
        normalized = moto_request(request.method, request.url, request.headers, request.body)
        if self.counter is not None:
            self.counter.observe(normalized.environ)
        status, headers, body = dispatch(normalized, aws_host + request.url[len(endpoint) :])
        return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]

    def _endpoint_of(self, url: str) -> str | None:
        for endpoint in self.endpoint_urls:
            if url == endpoint or url.startswith(endpoint + "/"):
                return endpoint
        return None


def _unsigned(**_: Any) -> Any:
    return botocore.UNSIGNED


def _credential_scope(client: Any) -> str:
    """What moto reads from a SigV4 ``Authorization`` header (the access key and the scope's
    region and service), without the signature it never checks."""
    credentials = client._request_signer._credentials  # botocore keeps no public accessor
    access_key = credentials.access_key if credentials is not None else "AKIAEXAMPLE"
    meta = client.meta
    signing_name = meta.service_model.signing_name
    day = time.strftime("%Y%m%d", time.gmtime())
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{day}/{meta.region_name}/{signing_name}/"
        "aws4_request, SignedHeaders=host, Signature=unsigned-in-process"
    )


def moto_request(method: str, url: str, headers: Any, body: Any) -> Any:
    """moto's ``Request`` for a prepared request, with the environ moto's own
    ``Request.from_primitives`` builds, written out rather than built by werkzeug's general
    test ``EnvironBuilder``, since the embedded stack makes two such calls per job. A body
    other than bytes, text or nothing (a stream) still goes through
    moto's; ``tests/unit/test_in_process_request.py`` compares the two."""
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        Request,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    elif not isinstance(body, bytes):
        return Request.from_primitives(method, url, headers, body)
    parts = urlsplit(url)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": _wsgi_text(unquote(parts.path)),
        "QUERY_STRING": _wsgi_text(parts.query),
        "REQUEST_URI": _wsgi_text(parts.path),  # without the query, as from_primitives has it
        "RAW_URI": _wsgi_text(parts.path),
        "SERVER_NAME": parts.hostname or "localhost",
        "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
        "HTTP_HOST": parts.netloc,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    preserved = {}
    for name, value in headers.items():
        key = environ_key_for_header(name)
        if key == "CONTENT_LENGTH" or key == "HTTP_TRANSFER_ENCODING":
            continue
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        environ[key] = f"{environ[key]}, {text}" if key in environ else text
        if should_preserve_original_header_name(name):
            preserved[key] = name
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
    return Request(environ)


def _wsgi_text(text: str) -> str:
    """PEP 3333's native strings: UTF-8 bytes read as Latin-1 (werkzeug's encoding dance)."""
    return text.encode("utf-8").decode("latin-1")


def dispatch(request: Any, service_url: str) -> MotoResponse:
    """moto's answer to ``request`` (moto's own ``Request``), from the handler its in-process
    mode would pick for ``service_url`` (the same path on the service's AWS domain)."""
    from moto.core.exceptions import HTTPException

    handler = _handler_for(service_url.split("?", 1)[0])
    try:
        status, headers, body = handler(request, request.raw_url, request.headers)
    except HTTPException as exc:
        return exc.code or 500, dict(exc.get_headers()), exc.get_body()
    return status, headers, body


@functools.lru_cache(maxsize=256)
def _handler_for(clean_url: str) -> Callable[..., MotoResponse]:
    """The moto handler for a URL without its query: matched once per URL, as moto's
    ``BotocoreStubber`` matches it on every call (a scan of ~250 services' patterns)."""
    import moto.backend_index as backend_index
    import moto.backends as backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict

    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regions = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        else:
            backend = backend_dict["global"]
        for url, handler in backend.urls.items():
            if re.compile(url).match(clean_url):
                return handler  # type: ignore[no-any-return]
    raise LookupError(f"moto has no handler for {clean_url}")
