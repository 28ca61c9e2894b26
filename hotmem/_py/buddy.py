"""Pure-Python twin of hotmem/_cy/buddy.pxi."""
