"""The pure-Python twin of the compiled core, one module per concept (see hotmem/_core_py.py)."""
