"""Fault injection after the kernel's own facilities: lib/fault-inject.c:should_fail with
mm/fail_page_alloc.c (page allocations) and an altmap twin of it, and
mm/memory-notifier-error-inject.c (a memory notifier returning a chosen errno). The state lives on
the Machine (``m.injections``, ``m.notifier_errors``); ``Machine.inject`` is the public entry.
"""
from __future__ import annotations

import errno

from hotmem.accounting import pfn_to_nid
from hotmem.errors import HotplugError

#: the events memory-notifier-error-inject can refuse (its debugfs actions)
NOTIFIER_EVENTS = ("MEM_GOING_ONLINE", "MEM_GOING_OFFLINE")


def should_fail(m, kind: str, **attrs) -> bool:
    """lib/fault-inject.c:should_fail: count the matching attempts, fail the chosen ones."""
    for inj in m.injections:
        if inj["kind"] != kind or any(inj.get(k) is not None and inj[k] != v
                                      for k, v in attrs.items()):
            continue
        inj["seen"] += 1
        if inj["seen"] >= inj["nth"] and inj["times"] > 0:
            inj["times"] -= 1
            inj["failed"] += 1
            return True
    return False


def should_fail_alloc_page(m, order: int, nid: int) -> bool:
    """mm/fail_page_alloc.c:should_fail_alloc_page (6.1) for the model's kernel allocations."""
    return bool(m.injections) and should_fail(m, "page_alloc", order=order, node=nid)


def should_fail_altmap(m) -> bool:
    """fail_page_alloc's twin for allocations from a vmem_altmap (the kernel has none)."""
    return bool(m.injections) and should_fail(m, "altmap")


def memory_notifier_error(m, event: str) -> int:
    """mm/memory-notifier-error-inject.c: the errno injected for ``event``, else 0."""
    return m.notifier_errors.get(event, 0)


def inject(m, kind: str, *, nth: int = 1, times: int = 1, order: int | None = None,
           node: int | None = None, event: str | None = None, error: int = -errno.ENOMEM,
           pfn: int | None = None) -> dict | None:
    """Arm an injection (see Machine.inject); raises HotplugError on bad arguments."""
    if kind == "notifier":
        if event not in NOTIFIER_EVENTS or error >= 0:
            raise HotplugError(errno.EINVAL, f"notifier injection: event {event!r} / error "
                               f"{error}: expected one of {NOTIFIER_EVENTS} and a "
                               "negative errno")
        m.notifier_errors[event] = error
        return None
    if kind == "unmovable":
        if pfn is None or not m.ms.pfn_valid(pfn):
            raise HotplugError(errno.EINVAL, f"unmovable injection: pfn {pfn!r} has no "
                               "struct page")
        if not m.allocator.take_page_off_buddy(pfn):
            raise HotplugError(errno.EBUSY, f"unmovable injection: pfn {pfn:#x} is not free")
        m.owners.note_buddy(pfn, 0, pfn_to_nid(m, pfn), "injected unmovable")
        return None
    if kind not in ("page_alloc", "altmap") or nth < 1 or times < 1:
        raise HotplugError(errno.EINVAL, f"injection {kind!r} (nth {nth}, times {times}): "
                           "unknown kind or count below 1")
    inj = {"kind": kind, "nth": nth, "times": times, "order": order, "node": node,
           "seen": 0, "failed": 0}
    m.injections.append(inj)
    return inj


def clear(m) -> None:
    """Disarm every injection."""
    m.injections.clear()
    m.notifier_errors.clear()
