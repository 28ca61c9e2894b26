# buddy: see hotmem/_py/buddy.py for the pure-Python twin
