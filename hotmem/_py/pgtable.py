"""Pure-Python twin of hotmem/_cy/pgtable.pxi."""
