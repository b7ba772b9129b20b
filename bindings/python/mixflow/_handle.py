"""The one place that owns a libmixflow handle on the Python side."""
import ctypes
import weakref

import numpy as np


class _Lifetime:
    """The handle's life: held by its owner and by every array that views the handle's memory; the handle is
    freed when the last holder goes, so no array the binding hands out can point into freed memory."""
    __slots__ = ("__weakref__",)


class HandleOwner:
    """Owns one C handle: freed exactly once, by ``close()``, the context manager, or garbage collection
    (``weakref.finalize``, which replaces ``__del__``). Using the object after ``close()`` raises. While an
    array from ``_view`` is alive, ``close()`` only detaches this object and the array frees the handle."""

    def _own(self, handle, free) -> None:
        self._handle = handle
        self._lifetime = _Lifetime()
        self._finalizer = weakref.finalize(self._lifetime, free, handle)

    @property
    def _ptr(self):
        if self._lifetime is None or not self._finalizer.alive:
            raise ValueError(f"this {type(self).__name__} has been closed")
        return self._handle

    def _view(self, pointer, count: int) -> np.ndarray:
        """A float32 numpy array over ``count`` floats of memory owned by the handle; it keeps the handle alive."""
        buffer = (ctypes.c_float * count).from_address(ctypes.addressof(pointer.contents))
        buffer._lifetime = self._lifetime
        return np.ctypeslib.as_array(buffer)

    def close(self) -> None:
        self._lifetime = None   # the last reference: CPython frees the handle here, unless a view still holds it

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
