# scan: see hotmem/_py/scan.py for the pure-Python twin
