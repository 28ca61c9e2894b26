# memmap: see hotmem/_py/memmap.py for the pure-Python twin
