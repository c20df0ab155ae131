"""Domain errors: raise them from a handler and the client receives their status code and message.

    class UserNotFound(NotFound): ...

    raise UserNotFound(f"no user {request.id}")   # -> NOT_FOUND "no user ..."

Any other exception becomes INTERNAL "internal error" on the wire (logged with its traceback on the
server), unless `build_server(errors={SomeError: grpc.StatusCode.X})` maps its type to a code.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class DomainError(Exception):
    """An expected failure of a request. `code` is the gRPC status; `str(error)` is sent as the details."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
