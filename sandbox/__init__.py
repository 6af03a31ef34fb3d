"""Local imitations of the SaaS APIs the pipeline reads and writes, over real HTTP, seeded with
a synthetic Finnish world. `Sandbox(World.generate()).start()` in-process, or
`python -m sandbox serve` as a process (see `sandbox.__main__`)."""

from .server import Sandbox
from .world import World

__all__ = ["Sandbox", "World"]
