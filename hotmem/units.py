"""Binary size units and their exact rendering, shared by the arch and report layers."""

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


def iec(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it exactly ("128 MiB")."""
    for shift, unit in ((50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"
