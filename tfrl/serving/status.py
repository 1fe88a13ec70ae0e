"""TF Serving's error codes and how its REST API maps them to HTTP statuses."""

from __future__ import annotations

import enum

from tfrl.errors import TfrlError
from tfrl.ports import ServerStartError

__all__ = ["Code", "ServerStartError", "ServingError"]


class Code(enum.Enum):
    """A canonical error code; `http_status` is what TF Serving's REST API answers."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"  # REST only: e.g. a GET on :predict
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers this code with."""
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.PAYLOAD_TOO_LARGE: 413,  # the HTTP layer's body limit
    Code.RESOURCE_EXHAUSTED: 429,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
}


class ServingError(TfrlError):
    """A request the server answers with `{"error": message}` and `code`'s status."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple:  # picklable, for the codec's worker processes
        return (type(self), (self.code, self.message))
