"""drivers/base: memory block devices and nodes."""
