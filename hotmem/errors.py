"""Errors raised by hotmem: the kernel's errno plus a message naming the offending value.

One convention, as in the kernel: below the public boundary (the Machine API, the sysfs stores,
the driver-core entry points device_online/device_offline) functions return 0 or a negative
errno. A refusing step records why with :func:`fail` (the kernel's pr_warn before ``return
-err``); a function that changed something before it fails undoes it in one place, in reverse
order (:class:`Unwind`, the kernel's ``goto err_*`` ladder); the public boundary turns a negative
result into :class:`HotplugError` with :func:`check`. Where the kernel would BUG() or oops, the
model raises HotplugError from below (there is nothing to return to); boot raises too (an
__init path that cannot go on panics).
"""
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


def fail(m, err: int, message: str) -> int:
    """Refuse with positive errno ``err``: keep ``message`` for the boundary, return -err."""
    m.errmsg = message
    return -err


def error_from(m, rc: int) -> HotplugError:
    """The HotplugError of a negative result ``rc`` and the reason recorded for it."""
    msg, m.errmsg = m.errmsg, None
    return HotplugError(-rc, msg if msg is not None else os.strerror(-rc))


def check(m, rc: int) -> int:
    """The public boundary: a negative ``rc`` raises HotplugError, anything else is returned."""
    if rc < 0:
        raise error_from(m, rc)
    return rc


class Unwind:
    """The kernel's ``goto err_*`` ladder, in one place: ``push(fn, *args)`` once a step that
    needs undoing has succeeded; ``unwind(rc)`` undoes the steps in reverse order and returns
    ``rc``. Used as a context manager, it also unwinds when a HotplugError from below (a kernel
    oops the model survives) passes through."""

    __slots__ = ("steps",)

    def __init__(self):
        self.steps = []

    def push(self, fn, *args) -> None:
        self.steps.append((fn, args))

    def unwind(self, rc: int) -> int:
        steps, self.steps = self.steps, []
        for fn, args in reversed(steps):
            fn(*args)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, HotplugError):
            self.unwind(0)
        return False
