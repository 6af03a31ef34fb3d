"""`make bench`: benchmarks on large sandbox worlds. See bench/__main__.py."""
