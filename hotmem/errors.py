"""Errors raised by hotmem: the kernel's errno plus a message naming the offending value."""
import errno as _errno
import os


class HotplugError(Exception):
    """A refused operation, as the kernel refuses it.

    ``errno`` is the positive errno value the kernel function returns negated
    (e.g. ``errno.EINVAL``); ``errno_name`` is its symbolic name.
    """

    def __init__(self, err: int, message: str):
        super().__init__(f"{_errno.errorcode.get(err, str(err))}: {message}")
        self.errno = err
        self.message = message

    @property
    def errno_name(self) -> str:
        return _errno.errorcode.get(self.errno, str(self.errno))

    @property
    def strerror(self) -> str:
        """What a shell prints for this errno, e.g. 'Device or resource busy'."""
        return os.strerror(self.errno)


def einval(message: str) -> HotplugError:
    return HotplugError(_errno.EINVAL, message)
