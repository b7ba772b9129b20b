"""The one place that owns a libmixflow handle on the Python side."""
import weakref


class HandleOwner:
    """Owns one C handle: freed exactly once, by ``close()``, the context manager, or garbage collection
    (``weakref.finalize``, which replaces ``__del__``). Using the object after ``close()`` raises."""

    def _own(self, handle, free) -> None:
        self._handle = handle
        self._finalizer = weakref.finalize(self, free, handle)

    @property
    def _ptr(self):
        if not self._finalizer.alive:
            raise ValueError(f"this {type(self).__name__} has been closed")
        return self._handle

    def close(self) -> None:
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
