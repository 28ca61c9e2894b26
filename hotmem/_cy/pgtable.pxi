# pgtable: see hotmem/_py/pgtable.py for the pure-Python twin
