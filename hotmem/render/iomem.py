"""/proc/iomem and /proc/ioports (kernel/resource.c, Linux 6.1)."""
from __future__ import annotations

from hotmem.render.model import Resource, iomem_root

# kernel/resource.c (6.1): indentation stops growing at this depth.
MAX_IORES_LEVEL = 5


def _walk(res, depth: int = 0):
    """kernel/resource.c:next_resource (6.1): pre-order over the descendants, with depth."""
    for child in res.children:
        yield depth, child
        yield from _walk(child, depth + 1)


def render_iomem(root: Resource, privileged: bool = True) -> str:
    """kernel/resource.c:r_show (6.1) over every descendant of ``root`` in pre-order: two spaces
    per level (at most MAX_IORES_LEVEL), addresses zero-padded to 4 hex digits when the root ends
    below 0x10000 (ioports) and 8 otherwise; without CAP_SYS_ADMIN every address reads 0.
    Any tree of objects with start, end, name and children (address order) will do."""
    width = 4 if root.end < 0x10000 else 8
    out = []
    for depth, r in _walk(root):
        start, end = (r.start, r.end) if privileged else (0, 0)
        name = r.name if r.name is not None else "<BAD>"
        indent = "  " * min(depth, MAX_IORES_LEVEL)
        out.append(f"{indent}{start:0{width}x}-{end:0{width}x} : {name}\n")
    return "".join(out)


def parse_iomem(text: str, root: Resource | None = None) -> Resource:
    """Inverse of render_iomem (privileged view): rebuild the tree under ``root`` (default
    iomem_resource) from the indentation."""
    root = root if root is not None else iomem_root()
    stack = [root]
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        span, sep, name = stripped.partition(" : ")
        start, dash, end = span.partition("-")
        if not sep or not dash or indent % 2:
            raise ValueError(f"iomem: unexpected line {line!r}")
        depth = indent // 2
        if depth > len(stack) - 1:
            raise ValueError(f"iomem: line {line!r} is nested below nothing")
        del stack[depth + 1:]
        node = Resource(int(start, 16), int(end, 16), name)
        stack[-1].children.append(node)
        stack.append(node)
    return root
