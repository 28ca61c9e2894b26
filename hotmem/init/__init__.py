"""init/: the kernel's start-up (init/main.c)."""
