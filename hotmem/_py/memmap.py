"""Pure-Python twin of hotmem/_cy/memmap.pxi."""
