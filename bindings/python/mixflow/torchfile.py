"""Reads PyTorch checkpoints (.pt/.pth: zip or legacy format), .safetensors and .npz WITHOUT PyTorch and without
running code from the file.

A torch checkpoint is a pickle, and unpickling calls whatever global the file names (`os.system`, ...). Here the
unpickler's `find_class` maps a short allowlist of names to our own data-only rebuilders; no module named in the
file is ever imported. Any other global is refused with `UnsafeCheckpointError` (nothing has run at that point),
or, with `allow_opaque=True`, becomes an inert `Opaque` placeholder that records its name and arguments and is
never called. Tensors come back as numpy arrays (bfloat16 as float32, since numpy has no bfloat16).

    obj = load("SiT-XL-2-256x256.pt")          # whatever was saved: a state dict, {model, ema, opt, args}, ...
    tensors, meta = read_tensors("x.safetensors")
"""
from __future__ import annotations

import collections
import errno
import io
import json
import os
import pickle
import pickletools
import re
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["UnsafeCheckpointError", "CheckpointFormatError", "Opaque", "Namespace", "load", "read_tensors",
           "read_safetensors", "write_safetensors"]

MAX_PICKLE_BYTES = 1 << 30  # data.pkl holds structure, not weights; anything larger is hostile


class UnsafeCheckpointError(Exception):
    """The file names a global outside the allowlist; nothing from the file was executed."""


class CheckpointFormatError(ValueError):
    """The file is truncated, inconsistent or not in a supported format."""


class Opaque:
    """Inert stand-in for a global that was not allowed (only with allow_opaque=True): never imported or called."""
    _module = "?"
    _name = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return "<opaque %s.%s>" % (self._module, self._name)


class Namespace(dict):
    """argparse.Namespace as a plain dict (the official SiT/REPA checkpoints store their args this way)."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


# ---- dtypes ----------------------------------------------------------------------------------------------
# torch storage class name -> (numpy dtype, itemsize). bfloat16 is read as uint16 bits and widened.
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?",
}
_TORCH_DTYPES = {"float32": "<f4", "float": "<f4", "float64": "<f8", "double": "<f8", "float16": "<f2", "half": "<f2",
                 "bfloat16": "bf16", "int64": "<i8", "long": "<i8", "int32": "<i4", "int": "<i4", "int16": "<i2",
                 "int8": "i1", "uint8": "u1", "bool": "?"}


def _bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


class _StorageType:
    """What `torch.FloatStorage` etc. resolve to: only a dtype tag, used by persistent_load."""

    def __init__(self, dtype):
        self.dtype = dtype


class _TorchDtype:
    def __init__(self, dtype):
        self.dtype = dtype


class _Storage:
    def __init__(self, array):
        self.array = array  # 1-D numpy array of the storage's elements (bf16 as uint16 bits)


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    if isinstance(storage, _LazyStorage):
        return _LazyTensor(storage, (offset, size, stride))
    if not isinstance(storage, _Storage):
        raise CheckpointFormatError("tensor storage is %r, expected a storage reference" % (storage,))
    size, stride = tuple(size), tuple(stride)
    if not all(isinstance(v, int) for v in (offset, *size, *stride)) or len(size) != len(stride):
        raise CheckpointFormatError("tensor has size %r / stride %r / offset %r" % (size, stride, offset))
    if offset < 0 or any(v < 0 for v in size) or any(v < 0 for v in stride):
        raise CheckpointFormatError("tensor has a negative size, stride or offset: %r %r %r" % (size, stride, offset))
    src = storage.array
    bf16 = src.dtype == np.uint16 and getattr(storage, "bf16", False)
    if 0 in size:
        out = np.zeros(size, dtype=np.float32 if bf16 else src.dtype)
        return out
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= src.size:
        raise CheckpointFormatError("tensor view [offset %d, size %r, stride %r] reaches element %d of a %d-element "
                                    "storage" % (offset, size, stride, last, src.size))
    view = np.lib.stride_tricks.as_strided(src[offset:], shape=size,
                                           strides=tuple(s * src.itemsize for s in stride), writeable=False)
    out = np.array(view, copy=True, order="C")  # own, C-contiguous memory: never aliases the storage bytes
    return _bf16_to_f32(out) if bf16 else out


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *_rest):
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_rest):
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


def _reconstructor(cls, base, state=None):
    # copyreg._reconstructor(cls, object, None) is how protocol 0/1 pickles plain objects; only our own safe
    # classes can arrive here as `cls` (find_class produced them).
    if base is not object or not (isinstance(cls, type) and issubclass(cls, (Namespace, Opaque))):
        raise UnsafeCheckpointError("copyreg._reconstructor with %r / %r is not allowed" % (cls, base))
    return cls.__new__(cls)


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch", "Size"): tuple,
    ("argparse", "Namespace"): Namespace,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
    ("builtins", "complex"): complex, ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "set"): set, ("__builtin__", "object"): object, ("builtins", "object"): object,
}
for _n, _d in _STORAGE_DTYPES.items():
    _ALLOWED[("torch", _n)] = _StorageType(_d)
for _n, _d in _TORCH_DTYPES.items():
    _ALLOWED[("torch", _n)] = _TorchDtype(_d)
_ALLOWED[("torch", "UntypedStorage")] = _StorageType("u1")
_ALLOWED[("torch.storage", "UntypedStorage")] = _StorageType("u1")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages, allow_opaque):
        super().__init__(file, encoding="latin1")  # latin1: legacy py2-era pickles keep their bytes
        self._storages, self._allow_opaque = storages, allow_opaque

    def find_class(self, module, name):
        # Never super().find_class: that imports `module`.
        hit = _ALLOWED.get((module, name))
        if hit is not None:
            return hit
        if self._allow_opaque:
            return type(name, (Opaque,), {"_module": module, "_name": name})
        raise UnsafeCheckpointError("refusing to load global %s.%s: it is not a tensor, storage or container, and "
                                    "unpickling it could run code (nothing was executed)" % (module, name))

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise CheckpointFormatError("unsupported persistent id %r" % (pid,))
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(stype, _StorageType):
            raise CheckpointFormatError("storage type %r is not a known torch storage" % (stype,))
        if not isinstance(numel, int) or numel < 0:
            raise CheckpointFormatError("storage %s has element count %r" % (key, numel))
        return self._storages(key, stype.dtype, numel)


def _array_from_bytes(raw: bytes, dtype: str, numel: int, big_endian: bool, what: str) -> _Storage:
    np_dtype = np.dtype("<u2" if dtype == "bf16" else dtype)
    if dtype == "u1" and numel and len(raw) != numel:  # UntypedStorage counts bytes
        raise CheckpointFormatError("%s has %d bytes, expected %d" % (what, len(raw), numel))
    if len(raw) < numel * np_dtype.itemsize:
        raise CheckpointFormatError("%s has %d bytes, %d elements of %s need %d"
                                    % (what, len(raw), numel, dtype, numel * np_dtype.itemsize))
    arr = np.frombuffer(raw, dtype=np_dtype, count=numel)
    if big_endian:
        arr = arr.byteswap()
    s = _Storage(arr)
    s.bf16 = dtype == "bf16"
    return s


# ---- limits ----------------------------------------------------------------------------------------------
# A compressed zip member may expand this much beyond MAX_SMALL_MEMBER: tensors of trained weights hardly
# compress at all, so a larger ratio on a large member is a decompression bomb, refused before inflating.
MAX_SMALL_MEMBER = 64 << 20
MAX_RATIO = 100


def _check_member(info, path):
    """Refuses a zip member whose declared size is a bomb (before anything is decompressed); zipfile then
    checks that the member inflates to exactly that size (and its CRC)."""
    if info.flag_bits & 0x1:
        raise CheckpointFormatError("%s: %r is encrypted, which checkpoints never are" % (path, info.filename))
    if info.file_size > MAX_SMALL_MEMBER and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise CheckpointFormatError("%s: %r expands %d bytes to %d (more than %d:1): refused as a decompression bomb"
                                    % (path, info.filename, info.compress_size, info.file_size, MAX_RATIO))


def _json_depth(text: bytes) -> int:
    """The deepest nesting of [ and { outside strings, without parsing (json.loads recurses once per level)."""
    bare = re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', text)
    a = np.frombuffer(bare, np.uint8)
    step = np.isin(a, (ord("["), ord("{"))).astype(np.int64) - np.isin(a, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


# ---- torch zip format ------------------------------------------------------------------------------------
def _load_zip(path, allow_opaque):
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise CheckpointFormatError("%s: not a valid zip archive: %s" % (path, e)) from None
    with zf:
        for info in zf.infolist():  # before anything is read or inflated
            _check_member(info, path)
        pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointFormatError("%s: expected one <archive>/data.pkl, found %r" % (path, pkls))
        prefix = pkls[0][: -len("data.pkl")]
        names = set(zf.namelist())
        big = False
        if prefix + "byteorder" in names:
            order = zf.read(prefix + "byteorder").strip()
            if order not in (b"little", b"big"):
                raise CheckpointFormatError("%s: byteorder is %r" % (path, order))
            big = order == b"big"
        cache = {}

        def storage(key, dtype, numel):
            if key not in cache:
                name = prefix + "data/" + key
                if name not in names:
                    raise CheckpointFormatError("%s: storage %s is missing (%s)" % (path, key, name))
                info = zf.getinfo(name)
                need = numel * (2 if dtype == "bf16" else np.dtype(dtype).itemsize)
                if info.file_size != need and not (dtype == "u1"):
                    raise CheckpointFormatError("%s: %s holds %d bytes, %d elements need %d"
                                                % (path, name, info.file_size, numel, need))
                # file_size was checked before decompressing, so a zip bomb cannot inflate past `need`.
                cache[key] = _array_from_bytes(zf.read(name), dtype, numel, big, "%s: %s" % (path, name))
            return cache[key]

        info = zf.getinfo(pkls[0])
        if info.file_size > MAX_PICKLE_BYTES:
            raise CheckpointFormatError("%s: data.pkl is %d bytes" % (path, info.file_size))
        return _unpickle(zf.read(pkls[0]), storage, allow_opaque, path)


def _check_memo(stream, path):
    """Walks one pickle's opcodes (nothing is built) and refuses memo indices a pickle of this size cannot
    need: pickle's memo is an array sized by the largest index, so `LONG_BINPUT 374869873` in a 2 KB file
    would make the unpickler allocate gigabytes before it fails. Leaves `stream` where it was."""
    start = stream.tell()
    size = len(stream.getbuffer()) - start
    try:
        for op, arg, _pos in pickletools.genops(stream):
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and (
                    not isinstance(arg, int) or not 0 <= arg < size):
                raise CheckpointFormatError("%s: pickle memo index %r is out of range for a %d-byte pickle"
                                            % (path, arg, size))
    except CheckpointFormatError:
        raise
    except Exception as e:  # noqa: BLE001 (genops raises ValueError and others on corrupt opcodes)
        raise CheckpointFormatError("%s: corrupt pickle: %s: %s" % (path, type(e).__name__, e)) from None
    finally:
        stream.seek(start)


def _unpickle(data, storage, allow_opaque, path):
    stream = io.BytesIO(data)
    _check_memo(stream, path)
    try:
        return _Unpickler(stream, storage, allow_opaque).load()
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, KeyError, IndexError, AttributeError,
            struct.error, RecursionError, MemoryError) as e:
        raise CheckpointFormatError("%s: corrupt pickle: %s: %s" % (path, type(e).__name__, e)) from None


# ---- legacy (pre-1.6, _use_new_zipfile_serialization=False) ----------------------------------------------
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_legacy(path, allow_opaque):
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)

    def small_pickle():
        _check_memo(stream, path)
        return _unpickle_plain(stream, path)

    if small_pickle() != _LEGACY_MAGIC:
        raise CheckpointFormatError("%s: not a torch checkpoint (no zip header, no legacy magic number)" % path)
    if small_pickle() != 1001:
        raise CheckpointFormatError("%s: unsupported legacy protocol version" % path)
    sys_info = small_pickle()
    big = isinstance(sys_info, dict) and not sys_info.get("little_endian", True)
    requested = {}  # key -> (dtype, numel); filled while the main pickle is read

    def storage(key, dtype, numel):
        slot = requested.setdefault(key, [dtype, numel, None])
        if slot[0] != dtype or slot[1] != numel:
            raise CheckpointFormatError("%s: storage %s is referenced with two types or sizes" % (path, key))
        return _LazyStorage(slot)

    _check_memo(stream, path)
    try:
        obj = _Unpickler(stream, storage, allow_opaque).load()
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except Exception as e:  # noqa: BLE001 (pickle raises many types on corrupt input)
        raise CheckpointFormatError("%s: corrupt pickle: %s: %s" % (path, type(e).__name__, e)) from None
    keys = small_pickle()
    if not isinstance(keys, list):
        raise CheckpointFormatError("%s: storage key list missing" % path)
    for key in keys:
        key = str(key)
        if key not in requested:
            raise CheckpointFormatError("%s: unexpected storage %s" % (path, key))
        dtype, numel, _ = requested[key]
        header = stream.read(8)
        if len(header) != 8:
            raise CheckpointFormatError("%s: truncated before storage %s" % (path, key))
        (count,) = struct.unpack("<q" if not big else ">q", header)
        if count != numel:
            raise CheckpointFormatError("%s: storage %s has %d elements, expected %d" % (path, key, count, numel))
        nbytes = numel * (2 if dtype == "bf16" else np.dtype(dtype).itemsize)
        raw = stream.read(nbytes)
        requested[key][2] = _array_from_bytes(raw, dtype, numel, big, "%s: storage %s" % (path, key))
    return _resolve_lazy(obj, path)


class _LazyStorage(_Storage):
    """Legacy files store tensor bytes after the pickle: tensors are rebuilt once the bytes are read."""

    def __init__(self, slot):
        self.slot = slot


class _LazyTensor:
    def __init__(self, storage, args):
        self.storage, self.args = storage, args


def _unpickle_plain(stream, path):
    try:
        return _Unpickler(stream, lambda *a: _fail_storage(path), False).load()
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except Exception as e:  # noqa: BLE001
        raise CheckpointFormatError("%s: corrupt legacy header: %s: %s" % (path, type(e).__name__, e)) from None


def _fail_storage(path):
    raise CheckpointFormatError("%s: storage reference in a legacy header pickle" % path)


def _resolve_lazy(obj, path, depth=0):
    if depth > 100:
        raise CheckpointFormatError("%s: nesting deeper than 100" % path)
    if isinstance(obj, _LazyTensor):
        filled = obj.storage.slot[2]
        if filled is None:
            raise CheckpointFormatError("%s: a tensor's storage was never written" % path)
        return _rebuild_tensor(filled, *obj.args)
    if isinstance(obj, dict):
        for k in list(obj.keys()):
            obj[k] = _resolve_lazy(obj[k], path, depth + 1)
        return obj
    if isinstance(obj, list):
        return [_resolve_lazy(v, path, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve_lazy(v, path, depth + 1) for v in obj)
    return obj


# ---- safetensors -----------------------------------------------------------------------------------------
_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "bf16", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U8": "u1", "BOOL": "?"}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items() if v != "bf16"}
MAX_SAFETENSORS_HEADER = 100 << 20


def read_safetensors(path):
    """(OrderedDict name -> array, metadata dict) from a .safetensors file, every offset validated."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointFormatError("%s: shorter than the 8-byte header length" % path)
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_SAFETENSORS_HEADER):
            raise CheckpointFormatError("%s: header length %d exceeds the file (%d bytes)" % (path, n, size))
        text = f.read(n)
        if _json_depth(text) > 4:  # {"name": {"shape": [..]}} is 3 deep
            raise CheckpointFormatError("%s: header nests deeper than a safetensors header can" % path)
        try:
            header = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CheckpointFormatError("%s: header is not JSON: %s" % (path, e)) from None
        if not isinstance(header, dict):
            raise CheckpointFormatError("%s: header is not a JSON object" % path)
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise CheckpointFormatError("%s: __metadata__ must map strings to strings" % path)
        data_size = size - 8 - n
        out = collections.OrderedDict()
        spans = []
        for name, info in header.items():
            try:
                dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            except (TypeError, KeyError, ValueError):
                raise CheckpointFormatError("%s: tensor %r has a malformed entry" % (path, name)) from None
            if dtype not in _ST_DTYPES:
                raise CheckpointFormatError("%s: tensor %r has unsupported dtype %r" % (path, name, dtype))
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise CheckpointFormatError("%s: tensor %r has shape %r" % (path, name, shape))
            if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size):
                raise CheckpointFormatError("%s: tensor %r has data_offsets [%r, %r] outside the %d data bytes"
                                            % (path, name, begin, end, data_size))
            itemsize = 2 if dtype == "BF16" else np.dtype(_ST_DTYPES[dtype]).itemsize
            if end - begin != int(np.prod(shape, dtype=object)) * itemsize:
                raise CheckpointFormatError("%s: tensor %r spans %d bytes, shape %r of %s needs %d"
                                            % (path, name, end - begin, shape, dtype,
                                               int(np.prod(shape, dtype=object)) * itemsize))
            spans.append((begin, end, name))
            f.seek(8 + n + begin)
            raw = f.read(end - begin)
            arr = np.frombuffer(raw, dtype="<u2" if dtype == "BF16" else _ST_DTYPES[dtype]).reshape(shape)
            out[name] = _bf16_to_f32(arr) if dtype == "BF16" else arr.copy()
        spans.sort()
        for (b0, e0, n0), (b1, _e1, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                raise CheckpointFormatError("%s: tensors %r and %r overlap" % (path, n0, n1))
        return out, dict(meta)


def write_safetensors(path, tensors, metadata=None):
    """Writes name -> array (float/int/bool dtypes numpy knows) as .safetensors, atomically."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.require(a, requirements="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        if a.dtype not in _ST_NAMES:
            raise ValueError("tensor %r has dtype %s, which safetensors cannot store" % (name, a.dtype))
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _ST_NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned, as the reference writer does
    with _atomic(path) as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class _atomic:
    """Writes `path` so that readers see the old file or the complete new one: the bytes go to an unnamed file
    in the destination folder (Linux O_TMPFILE), which is fsynced, linked to a temporary name and renamed
    over `path`. A killed save leaves nothing behind; where O_TMPFILE is unsupported the temporary has a name
    from the start, `.<name>.tmp-<pid>-<n>`, and the next save of `path` removes those of dead processes
    (the same scheme as the library's AtomicFile)."""

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        self.folder, self.name = os.path.split(self.path)
        self.tmp = None

    def _temporary(self):
        return os.path.join(self.folder, ".%s.tmp-%d-%d" % (self.name, os.getpid(), int.from_bytes(os.urandom(6), "little")))

    def _sweep(self):
        prefix = ".%s.tmp-" % self.name
        for entry in os.listdir(self.folder):
            pid = entry[len(prefix):].split("-")[0] if entry.startswith(prefix) else ""
            if pid.isdigit():
                try:
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    try:
                        os.unlink(os.path.join(self.folder, entry))
                    except OSError:
                        pass
                except OSError:
                    pass

    def __enter__(self):
        self._sweep()
        try:
            fd = os.open(self.folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o644)
        except (AttributeError, OSError) as e:
            if getattr(e, "errno", None) not in (None, errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            self.tmp = self._temporary()
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.f = os.fdopen(fd, "wb")
        return self.f

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                self.f.flush()
                os.fsync(self.f.fileno())
                if self.tmp is None:
                    self.tmp = self._temporary()
                    # (a dir fd makes os.link call linkat with AT_SYMLINK_FOLLOW; plain link() would not follow)
                    dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        os.link("/proc/self/fd/%d" % self.f.fileno(), self.tmp, src_dir_fd=dir_fd, follow_symlinks=True)
                    finally:
                        os.close(dir_fd)
            self.f.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
                dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        finally:
            if not self.f.closed:
                self.f.close()
            if self.tmp is not None and os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False


# ---- entry points ----------------------------------------------------------------------------------------
# Exceptions that hostile bytes raise inside zipfile, zlib, json, numpy and pickle; each entry point maps
# them to CheckpointFormatError (one line: file and cause), so a caller never sees a library's traceback.
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, UnicodeDecodeError, RecursionError, OverflowError,
            struct.error, EOFError, IndexError, KeyError, TypeError, ValueError, NotImplementedError)


class _format_errors:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, e, _tb):
        if exc_type is None or issubclass(exc_type, (CheckpointFormatError, UnsafeCheckpointError)):
            return False
        if issubclass(exc_type, _CORRUPT):
            raise CheckpointFormatError("%s: corrupt or unsupported file: %s: %s"
                                        % (self.path, exc_type.__name__, str(e).splitlines()[0] if str(e) else "")) from None
        return False


def load(path, allow_opaque=False):
    """Loads a torch checkpoint (.pt/.pth, zip or legacy) without torch; see the module docstring."""
    path = os.fspath(path)
    with _format_errors(path):
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic[:2] == b"PK":
            return _load_zip(path, allow_opaque)
        if magic[:1] == b"\x80":
            return _load_legacy(path, allow_opaque)
    raise CheckpointFormatError("%s: not a torch checkpoint (neither a zip archive nor a pickle)" % path)


def _read_npz(path):
    """An .npz's arrays; every member's declared size is checked against its .npy header (and bombs refused)
    before anything is decompressed."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            _check_member(info, path)
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _fortran, dtype = read_header(member)
                if dtype.hasobject:
                    raise CheckpointFormatError("%s: %r holds Python objects (pickled), which are refused"
                                                % (path, info.filename))
                need = member.tell() + int(np.prod(shape, dtype=object)) * dtype.itemsize
            if info.file_size != need:
                raise CheckpointFormatError("%s: %r is %d bytes, its header (%s %s) needs %d"
                                            % (path, info.filename, info.file_size, dtype, shape, need))
    with np.load(path, allow_pickle=False) as z:  # allow_pickle=False: object arrays would unpickle
        return collections.OrderedDict((k, z[k]) for k in z.files), {}


def read_tensors(path, allow_opaque=False):
    """(OrderedDict name -> array, metadata) from .safetensors, .npz, or a torch file holding tensors.

    A torch file may hold anything; this returns its top-level name -> array entries only (use
    mixflow.convert for training checkpoints)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        with _format_errors(path):
            return read_safetensors(path)
    if path.endswith(".npz"):
        try:
            return _read_npz(path)
        except (CheckpointFormatError, UnsafeCheckpointError):
            raise
        except (OSError, *_CORRUPT) as e:
            raise CheckpointFormatError("%s: not a valid .npz: %s: %s" % (path, type(e).__name__, e)) from None
    obj = load(path, allow_opaque)
    if not isinstance(obj, dict):
        raise CheckpointFormatError("%s holds a %s, not a dict of tensors" % (path, type(obj).__name__))
    return collections.OrderedDict((k, v) for k, v in obj.items() if isinstance(v, np.ndarray)), {}
