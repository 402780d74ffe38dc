"""SQS's JSON requests over HTTP answered by moto's SQS handler directly, without Flask.

moto's server routes every request through its domain dispatcher and a Flask application per
service (debug mode, CORS, request context, view lookup, a werkzeug ``Response``) before the
handler runs. The consumers' ReceiveMessage, SendMessageBatch and DeleteMessageBatch are
nearly all of the embedded server's HTTP traffic, and that routing is work their answers do
not need. For a ``POST`` with an ``X-Amz-Target: AmazonSQS.*`` header, :class:`DirectDispatch`
hands moto's own request object to the handler moto's router would pick (the one
:mod:`bridge.local_stack.in_process` uses) and writes its status, headers and body as the WSGI
response. Anything else goes to moto's application. ``tests/e2e/test_embedded_server.py``
compares both answers. moto's request recorder (off unless ``MOTO_ENABLE_RECORDING`` is set)
does not see these requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError
from werkzeug.http import HTTP_STATUS_CODES

from bridge.local_stack.in_process import dispatch

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The handler lookup only reads the host and path: any region's SQS endpoint finds it.
SQS_URL = "https://sqs.us-east-1.amazonaws.com"
SQS_TARGET = "AmazonSQS."


class DirectDispatch:
    """WSGI middleware in front of moto's application."""

    def __init__(self, app: WSGIApp) -> None:
        from moto.core.request import Request
        from moto.moto_server.werkzeug_app import DISABLE_GLOBAL_CORS

        self.app = app
        #: moto's request, marked as one its server received (as Flask's is).
        self._request_class = type("ServerRequest", (Request,), {"from_wsgi_server": True})
        self._cors = not DISABLE_GLOBAL_CORS

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "POST" or not environ.get(
            "HTTP_X_AMZ_TARGET", ""
        ).startswith(SQS_TARGET):
            return self.app(environ, start_response)
        request = self._request_class(environ)
        try:
            status, headers, body = dispatch(request, SQS_URL + request.path)
        except ClientError as exc:  # as moto's Flask view answers it
            status, headers, body = 400, {}, exc.response["Error"]["Message"]
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        response_headers = [
            (str(name), str(value))
            for name, value in headers.items()
            if str(name).lower() != "content-length"  # the payload's own, below
        ]
        if not any(name.lower() == "content-type" for name, _ in response_headers):
            response_headers.append(("Content-Type", "text/html; charset=utf-8"))  # Flask's
        response_headers.append(("Content-Length", str(len(payload))))
        if self._cors:
            response_headers.append(("Access-Control-Allow-Origin", "*"))  # flask_cors's
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}", response_headers)
        return [payload]
