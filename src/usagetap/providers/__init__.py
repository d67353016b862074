"""Pure extraction of usage from provider SDK objects (or their JSON): no patching, no I/O."""
