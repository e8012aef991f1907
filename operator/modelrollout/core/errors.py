"""The error tree.

``TemporaryError`` means "try again after ``delay`` seconds": an apiserver hiccup, a
conflict, a Job that has not written its result yet. ``PermanentError`` means retrying
cannot help until the input changes: an invalid spec, an unknown kind, a permission the
operator lacks. The scheduler (:mod:`modelrollout.services.scheduler`) retries the first
after its delay, and looks at the second again only at the resync, logging one line.
HTTP status codes from the apiserver are mapped here once (:func:`from_status`), so nothing
above the client looks at a status code.
"""

from __future__ import annotations


class ModelRolloutError(Exception):
    """Base of every error raised by modelrollout."""


class TemporaryError(ModelRolloutError):
    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(ModelRolloutError):
    pass


class InvalidSpec(PermanentError):
    """A spec that passed the schema but cannot be acted on; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ApiError(ModelRolloutError):
    def __init__(self, status: int, what: str, message: str) -> None:
        super().__init__(f"{what}: {message} (HTTP {status})")
        self.status = status
        self.what = what


class NotFound(ApiError):
    pass


class AlreadyExists(ApiError):
    pass


class Conflict(ApiError, TemporaryError):
    def __init__(self, status: int, what: str, message: str) -> None:
        ApiError.__init__(self, status, what, message)
        self.delay = 1.0


class Forbidden(ApiError, PermanentError):
    pass


class Invalid(ApiError, PermanentError):
    pass


class ServerError(ApiError, TemporaryError):
    def __init__(self, status: int, what: str, message: str) -> None:
        ApiError.__init__(self, status, what, message)
        self.delay = 5.0


def from_status(status: int, what: str, message: str) -> ApiError:
    if status == 404:
        return NotFound(status, what, message)
    if status == 409 and "already exists" in message:
        return AlreadyExists(status, what, message)
    if status == 409:
        return Conflict(status, what, message)
    if status in (401, 403):
        return Forbidden(status, what, message)
    if status in (400, 422):
        return Invalid(status, what, message)
    return ServerError(status, what, message)
