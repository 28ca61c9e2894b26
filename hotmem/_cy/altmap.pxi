# altmap: see hotmem/_py/altmap.py for the pure-Python twin
