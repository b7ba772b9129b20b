"""Exceptions raised by the binding: one class per ``mixflow_status``."""


class MixflowError(Exception):
    """A libmixflow call failed. ``status`` is the ``mixflow_status`` value, ``message`` the library's text."""

    status = -1

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgument(MixflowError, ValueError):
    status = 1


class InvalidHandle(MixflowError):
    status = 2


class OutOfMemory(MixflowError, MemoryError):
    status = 3


class IOFailure(MixflowError, OSError):
    status = 4


class FormatError(MixflowError):
    status = 5


class Unsupported(MixflowError):
    status = 6


class CallbackError(MixflowError):
    status = 7


class Cancelled(MixflowError):
    status = 8


class AbiMismatch(MixflowError):
    status = 9


class InternalError(MixflowError):
    status = 10


_BY_STATUS = {cls.status: cls for cls in (InvalidArgument, InvalidHandle, OutOfMemory, IOFailure, FormatError,
                                         Unsupported, CallbackError, Cancelled, AbiMismatch, InternalError)}


def for_status(status: int) -> type[MixflowError]:
    """The exception class for a non-zero status (MixflowError for unknown values)."""
    return _BY_STATUS.get(status, MixflowError)
