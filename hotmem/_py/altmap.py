"""Pure-Python twin of hotmem/_cy/altmap.pxi."""
