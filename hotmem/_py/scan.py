"""Pure-Python twin of hotmem/_cy/scan.pxi."""
