"""ganserve test suite."""
