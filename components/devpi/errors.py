"""The one exception tree every devpi call raises.

Each error carries the HTTP method, the URL (never with credentials in it), the status code when
there was a response, and a sentence a person can act on. Callers catch the class that matches
what they can handle (``NotFoundError`` while reading, ``ConflictError`` while creating) and let
everything else reach the user unchanged.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "DevpiError",
    "InvalidRequestError",
    "LoginRefusedError",
    "NotDevpiError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServerError",
    "ServerUnreachableError",
    "TlsError",
]


class DevpiError(Exception):
    """Base of every error raised when talking to devpi-server."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.url = url
        self.status = status
        self.server_message = server_message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.method and self.url:
            where = f" ({self.method} {self.url}"
            where += f" -> {self.status})" if self.status is not None else ")"
        detail = f": devpi says {self.server_message!r}" if self.server_message else ""
        return f"{self.message}{where}{detail}"


class ServerUnreachableError(DevpiError):
    """No HTTP answer at all after the bounded retries (refused, timed out, DNS)."""


class AuthenticationError(DevpiError):
    """The credentials were refused (login 401, or /+api reports them as not authenticated)."""


class LoginRefusedError(AuthenticationError):
    """POST /+login answered 401: wrong password or unknown user (devpi does not say which)."""


class NotDevpiError(DevpiError):
    """The configured URL does not lead to devpi-server's root: another web server answered, or a URL
    inside devpi (a user or index page) was given instead of the server's.

    Deliberately *not* a NotFoundError: a 404 from the wrong server says nothing about whether a
    user or index exists, so callers that treat "not found" as "already gone" must never see one.
    """


class PermissionDeniedError(DevpiError):
    """403: authenticated, but not allowed (or, for devpi, a missing index on PATCH/DELETE)."""


class NotFoundError(DevpiError):
    """404: the user, index, project, version or file does not exist.

    Raised only for a 404 that devpi-server itself sent (its ``X-Devpi-*`` headers are present) to a
    client that has proven its URL is devpi's root; anything else is a NotDevpiError.
    """


class ConflictError(DevpiError):
    """409: the object exists already, or a file differs in a non-volatile index."""


class InvalidRequestError(DevpiError):
    """400: devpi refused a value (bad name, unknown key, missing base index, ...)."""


class ServerError(DevpiError):
    """5xx after retries: devpi-server failed."""


class TlsError(DevpiError):
    """The TLS handshake failed: the server's certificate is not trusted (private CA not given), does
    not cover the URL's host name, has expired, or the port does not speak TLS.

    Never retried (a certificate does not fix itself between two attempts) and never "absent": it
    says nothing about the object asked for. The message names the URL, what was trusted and how to
    trust the right CA (``tls.caBundle`` of the stack, ``--ca-bundle``, or ``REQUESTS_CA_BUNDLE``).
    """
