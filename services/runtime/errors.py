"""Domain errors that servicers map to gRPC status codes.

Domain code raises these (or :func:`dependency_error` of a failed call to another service);
``services.runtime.status`` turns them into
``context.abort`` calls, so servicers stay thin and the mapping lives in one place.
"""

from __future__ import annotations

import grpc


class InvalidArgument(ValueError):
    """A request field breaks a rule of the contract → ``INVALID_ARGUMENT``.

    ``field`` is the field path as written in the .proto (``long_url``,
    ``events[3].code``); the status message reads ``FIELD: REASON``.
    """

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFound(LookupError):
    """The named entity does not exist (or no longer does) → ``NOT_FOUND``."""


class AlreadyExists(Exception):
    """The entity to create exists already → ``ALREADY_EXISTS``."""


class ResourceExhausted(Exception):
    """A finite resource (an ID space, a buffer) ran out → ``RESOURCE_EXHAUSTED``."""


class FailedPrecondition(Exception):
    """The system is not in the state the call needs (an upload not yet complete, an expired lease) → ``FAILED_PRECONDITION``.

    Retrying the same call unchanged fails again until the state changes.
    """


class Aborted(Exception):
    """A concurrent change won a conflict (another driver accepted the ride first) → ``ABORTED``.

    The caller may retry at a higher level (re-read, decide again); the same call unchanged usually fails again.
    """


class PermissionDenied(Exception):
    """The caller is identified but the entity is not theirs (another rider's ride) → ``PERMISSION_DENIED``."""


class Unauthenticated(Exception):
    """The call's credentials (an upload token) are missing, forged or expired → ``UNAUTHENTICATED``."""


class Unavailable(Exception):
    """The service cannot serve the call now (its store or log failed, it is stopping, a dependency did not answer)
    and nothing of it was done, or what was done is found again by a retry → ``UNAVAILABLE``: retry."""


def dependency_error(error: grpc.aio.AioRpcError) -> Exception:
    """The domain error of a dependency's NOT_FOUND, INVALID_ARGUMENT or FAILED_PRECONDITION; else ``error`` itself.

    Anything else stays an ``AioRpcError``, which the server interceptor
    answers as UNAVAILABLE (or DEADLINE_EXCEEDED): retry later.
    """
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, sep, reason = details.partition(": ")
        return InvalidArgument(field, reason) if sep else InvalidArgument("request", details)
    return error
