"""The context-manager protocol for everything that holds a resource and has ``close()``."""

from __future__ import annotations


class Closing:
    """Mixin: ``with thing:`` calls ``thing.close()`` on the way out, whatever happened inside."""

    def close(self) -> None:
        """Release what the object holds; safe to call more than once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
