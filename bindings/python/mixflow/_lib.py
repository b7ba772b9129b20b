"""Locating and loading libmixflow, and one typed stub per function of include/mixflow.h.

The library is looked up, in order: the MIXFLOW_LIBRARY environment variable, the copy bundled in the wheel
(next to this file), the SwiftPM build folders when the package runs from a source checkout (release first),
and then the system loader (an installed prefix, e.g. scripts/install.sh --prefix /usr/local, found through
ldconfig, LD_LIBRARY_PATH or ctypes.util.find_library). The error lists every place tried.
Stubs follow the header's order; tests/test_header_parity.py fails when a header function has no stub or
its arity differs.
"""
import ctypes
import ctypes.util
import os
from ctypes import (POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_uint8, c_uint32,
                    c_uint64, c_void_p)
from pathlib import Path

from . import __version__
from . import _args
from . import _types as T

_HERE = Path(__file__).resolve().parent
_LIBNAME = "libmixflow.so"
_SONAME = f"{_LIBNAME}.{__version__.split('.')[0]}"  # libmixflow.so.0, what scripts/install.sh installs


def _candidates() -> list[Path]:
    """Files to try, in order; the source tree's build folders only when this is a source checkout."""
    paths = []
    env = os.environ.get("MIXFLOW_LIBRARY")
    if env:
        paths.append(Path(env))
    paths.append(_HERE / _LIBNAME)
    root = _HERE.parent.parent.parent  # bindings/python/mixflow -> repository root
    if (root / "Package.swift").is_file():
        paths += [root / ".build" / config / _LIBNAME for config in ("release", "debug")]
    return paths


def _load() -> ctypes.CDLL:
    # CDLL (not PyDLL): the GIL is released during calls, and callbacks re-take it.
    tried = []
    for path in _candidates():
        if path.is_file():
            return ctypes.CDLL(str(path))
        tried.append(f"{path} (no such file)")
    for name in dict.fromkeys(n for n in (ctypes.util.find_library("mixflow"), _SONAME) if n):
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            tried.append(f"{name} through the system loader ({e})")
    raise OSError("libmixflow.so not found; set MIXFLOW_LIBRARY, install the wheel built after `swift build -c "
                  "release`, or install the library with scripts/install.sh. Tried:\n  " + "\n  ".join(tried))


lib = _load()
lib.mixflow_abi_version.restype = ctypes.c_uint32
if lib.mixflow_abi_version() != T.ABI_VERSION:
    raise ImportError(f"libmixflow ABI {lib.mixflow_abi_version()} does not match this binding's ABI {T.ABI_VERSION}; "
                      "rebuild the library or reinstall the binding")
_STUBS: dict[str, tuple[list, object]] = {}


def _api(name: str, argtypes: list, restype):
    """Declares the C signature of `name` and records it for the header-parity test."""
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    _STUBS[name] = (argtypes, restype)
    integers = [(i, t) for i, t in enumerate(argtypes) if t in _args.RANGES]
    if integers:
        # ctypes would truncate an out-of-range int silently (2**64 -> 0); refuse it with a message instead.
        def checked(*args, _fn=fn):
            for i, t in integers:
                if i < len(args):
                    _args.integer(args[i], f"{name}: argument {i + 1}", t)
            return _fn(*args)
        checked.__name__ = name
        fn = checked
        setattr(lib, name, fn)
    globals()[name] = fn
    return fn


FP = POINTER(c_float)
TR = POINTER(T.TransportHandle)
MD = POINTER(T.ModelHandle)
TN = POINTER(T.TrainerHandle)
IP = POINTER(c_int32)
TF = POINTER(T.TensorFileHandle)
TW = POINTER(T.TensorWriterHandle)
I64P = POINTER(c_int64)
SA = POINTER(T.SamplerHandle)
DP = POINTER(c_double)

# ---- version and errors --------------------------------------------------------------------------------
_api("mixflow_abi_version", [], c_uint32)
# ---- samplers: "equal" labels ---------------------------------------------------------------------------
_api("mixflow_equal_labels", [c_int64, c_int32, c_uint64, POINTER(c_int32)], c_int)
# ---- data and evaluation (header order) -----------------------------------------------------------------
DP = POINTER(c_double)
I32P = POINTER(c_int32)
IDX = POINTER(T.IdxHandle)
NET = POINTER(T.FeatnetHandle)
_api("mixflow_featnet_accuracy", [NET, FP, I32P, c_int64, c_int64, DP], c_int)
_api("mixflow_featnet_classify", [NET, FP, c_int64, c_int64, FP, I32P], c_int)
_api("mixflow_featnet_features", [NET, FP, c_int64, c_int64, FP], c_int)
_api("mixflow_featnet_free", [NET], None)
_api("mixflow_featnet_info", [NET, I64P, I64P, I64P], c_int)
_api("mixflow_featnet_load", [c_char_p, POINTER(NET)], c_int)
_api("mixflow_feature_stats_compute", [FP, c_int64, c_int64, DP, DP], c_int)
_api("mixflow_feature_stats_load", [c_char_p, c_int64, DP, DP, I64P], c_int)
_api("mixflow_frechet_distance_compute", [FP, c_int64, FP, c_int64, c_int64, DP], c_int)
_api("mixflow_frechet_distance_from_stats", [DP, DP, DP, DP, c_int64, DP], c_int)
_api("mixflow_idx_free", [IDX], None)
_api("mixflow_idx_info", [IDX, POINTER(c_int), POINTER(c_int32), I64P, c_int32], c_int)
_api("mixflow_idx_load", [c_char_p, POINTER(IDX)], c_int)
_api("mixflow_idx_read_f32", [IDX, c_int, FP, c_int64], c_int)
_api("mixflow_idx_read_i32", [IDX, I32P, c_int64], c_int)
_api("mixflow_idx_read_raw", [IDX, c_void_p, c_int64], c_int)
_api("mixflow_kid_compute", [FP, c_int64, FP, c_int64, c_int64, c_int64, c_int64, c_uint64, DP, DP, DP], c_int)
# ---- version and errors (cont.) -------------------------------------------------------------------------
_api("mixflow_last_error", [], c_char_p)
# ---- samplers -------------------------------------------------------------------------------------------
_api("mixflow_sample", [SA, T.MODEL_FN, c_void_p, T.MODEL_FN, c_void_p, FP, c_int64, c_int64, POINTER(c_int32), c_uint64,
                        FP, FP, POINTER(c_int64)], c_int)
_api("mixflow_sample_model", [SA, MD, MD, FP, c_int64, c_int64, POINTER(c_int32), c_uint64, FP, FP, POINTER(c_int64)], c_int)
_api("mixflow_sampler_create", [POINTER(T.SamplerParams), POINTER(SA)], c_int)
_api("mixflow_sampler_default_params", [POINTER(T.SamplerParams), c_uint32], c_int)
_api("mixflow_sampler_free", [SA], None)
_api("mixflow_sampler_get_params", [SA, POINTER(T.SamplerParams), c_uint32], c_int)
_api("mixflow_sampler_step", [SA, FP, c_int64, FP, c_int64, c_int64, c_uint64, FP], c_int)
_api("mixflow_sampler_timesteps", [SA, DP, c_int64, POINTER(c_int64)], c_int)
# ---- samples and slow flow ------------------------------------------------------------------------------
_api("mixflow_samples_to_uint8", [c_int, FP, c_int64, c_int64, c_int64, c_int64, POINTER(c_uint8)], c_int)
_api("mixflow_samples_write_npz", [c_char_p, POINTER(c_uint8), c_int64, c_int64, c_int64, c_int64], c_int)
_api("mixflow_samples_write_png", [c_char_p, POINTER(c_uint8), c_int64, c_int64, c_int64, c_int64, c_int64], c_int)
_api("mixflow_slow_flow_export", [c_char_p, c_int, c_int, DP, DP, c_int64, c_int64], c_int)
_api("mixflow_slow_flow_measure", [c_int, c_int, c_int, DP, c_int64, FP, FP, c_int64, c_int64, FP, c_int64, DP, DP], c_int)
_api("mixflow_slow_flow_stats", [DP, DP, c_int64, c_int64, DP], c_int)
_api("mixflow_slow_flow_suggest_gamma", [DP, DP, c_int64, c_int64, c_double, DP], c_int)
_api("mixflow_slow_flow_lag", [DP, DP, c_int64, c_int64, c_int32, DP, DP, POINTER(c_int32)], c_int)
_api("mixflow_slow_flow_outlook", [c_int32, c_double, POINTER(c_int32)], c_int)
_api("mixflow_slow_flow_outlook_rule", [POINTER(c_double), POINTER(c_double), POINTER(c_double)], c_int)
_api("mixflow_status_name", [c_int], c_char_p)
# ---- model ----------------------------------------------------------------------------------------------
_api("mixflow_model_create", [POINTER(T.ModelParams), POINTER(MD)], c_int)
_api("mixflow_model_default_params", [POINTER(T.ModelParams), c_uint32], c_int)
_api("mixflow_model_forward", [MD, FP, FP, IP, c_int64, FP], c_int)
_api("mixflow_model_free", [MD], None)
_api("mixflow_model_get_grad", [MD, c_char_p, I64P, c_int32, FP], c_int)
_api("mixflow_model_get_params", [MD, POINTER(T.ModelParams), c_uint32], c_int)
_api("mixflow_model_get_tensor", [MD, c_char_p, I64P, c_int32, FP], c_int)
_api("mixflow_model_gradients", [MD, FP, FP, IP, FP, c_int64, FP, FP], c_int)
_api("mixflow_model_ignored_tensors", [MD, c_char_p, c_size_t, POINTER(c_size_t)], c_int)  # model onnx
_api("mixflow_model_load_default_params", [POINTER(T.ModelLoadParams), c_uint32], c_int)  # model onnx
_api("mixflow_model_load_onnx", [c_char_p, POINTER(T.ModelLoadParams), POINTER(MD)], c_int)  # model onnx
_api("mixflow_model_metadata", [MD, c_char_p, c_size_t, POINTER(c_size_t)], c_int)  # model onnx
_api("mixflow_model_num_params", [MD], c_int64)
_api("mixflow_model_feature_size", [MD], c_int64)
_api("mixflow_model_num_tensors", [MD], c_int32)
_api("mixflow_model_save_default_params", [POINTER(T.ModelSaveParams), c_uint32], c_int)  # model onnx
_api("mixflow_model_save_onnx", [MD, c_char_p, POINTER(T.ModelSaveParams)], c_int)  # model onnx
_api("mixflow_model_set_tensor", [MD, c_char_p, FP, I64P, c_int32], c_int)
_api("mixflow_model_tensor_info", [MD, c_int32, POINTER(c_char_p), I64P, IP, IP], c_int)
# ---- transport ------------------------------------------------------------------------------------------
_api("mixflow_transport_create", [POINTER(T.TransportParams), POINTER(TR)], c_int)
_api("mixflow_transport_default_params", [POINTER(T.TransportParams), c_uint32], c_int)
_api("mixflow_transport_free", [TR], None)
_api("mixflow_transport_get_params", [TR, POINTER(T.TransportParams), c_uint32], c_int)
_api("mixflow_transport_loss", [TR, FP, FP, FP, FP, c_int64, c_int64, FP, FP, FP], c_int)
_api("mixflow_transport_prepare", [TR, FP, c_int64, c_int64, c_uint64, c_uint64, c_uint64, FP, FP, FP, FP, FP], c_int)
_api("mixflow_transport_preset_params", [c_char_p, c_int64, POINTER(T.TransportParams), c_uint32], c_int)
_api("mixflow_transport_training_interval", [TR, POINTER(c_double), POINTER(c_double)], c_int)
# ---- tensor files (ONNX) --------------------------------------------------------------------------------
_api("mixflow_tensor_file_find", [TF, c_char_p, POINTER(c_int64)], c_int)
_api("mixflow_tensor_file_free", [TF], None)
_api("mixflow_tensor_file_load", [c_char_p, POINTER(TF)], c_int)
_api("mixflow_tensor_file_metadata", [TF, c_char_p, c_char_p, c_size_t, POINTER(c_size_t)], c_int)
_api("mixflow_tensor_file_metadata_key", [TF, c_int64, c_char_p, c_size_t, POINTER(c_size_t)], c_int)
_api("mixflow_tensor_file_num_metadata", [TF], c_int64)
_api("mixflow_tensor_file_num_tensors", [TF], c_int64)
_api("mixflow_tensor_file_read", [TF, c_char_p, FP, c_int64], c_int)
_api("mixflow_tensor_file_read_index", [TF, c_int64, FP, c_int64], c_int)
_api("mixflow_tensor_file_read_stored", [TF, c_int64, c_void_p, c_uint64], c_int)
_api("mixflow_tensor_file_tensor_info", [TF, c_int64, POINTER(c_int32), POINTER(c_int32), POINTER(c_int64), c_int32,
                                         POINTER(c_int64), POINTER(c_int32)], c_int)
_api("mixflow_tensor_file_tensor_name", [TF, c_int64, c_char_p, c_size_t, POINTER(c_size_t)], c_int)
_api("mixflow_tensor_writer_add", [TW, c_char_p, FP, POINTER(c_int64), c_int32], c_int)
_api("mixflow_tensor_writer_add_typed", [TW, c_char_p, c_int32, c_void_p, POINTER(c_int64), c_int32], c_int)
_api("mixflow_tensor_writer_create", [c_char_p, c_int64, POINTER(TW)], c_int)
_api("mixflow_tensor_writer_finish", [TW], c_int)
_api("mixflow_tensor_writer_free", [TW], None)
_api("mixflow_tensor_writer_set_metadata", [TW, c_char_p, c_char_p], c_int)
# ---- trainer --------------------------------------------------------------------------------------------
_api("mixflow_trainer_create", [MD, TR, POINTER(T.TrainerParams), POINTER(TN)], c_int)
_api("mixflow_trainer_default_params", [POINTER(T.TrainerParams), c_uint32], c_int)
_api("mixflow_trainer_free", [TN], None)
_api("mixflow_trainer_get_model", [TN, c_int32, POINTER(MD)], c_int)
_api("mixflow_trainer_get_params", [TN, POINTER(T.TrainerParams), c_uint32], c_int)
_api("mixflow_trainer_preset_params", [c_char_p, c_int64, c_int64, POINTER(T.TrainerParams), c_uint32], c_int)
_api("mixflow_trainer_resume", [c_char_p, c_int32, POINTER(TN)], c_int)
_api("mixflow_trainer_save", [TN, c_char_p], c_int)
_api("mixflow_trainer_set_gradient_hook", [TN, T.GradientFn, ctypes.c_void_p], c_int)
_api("mixflow_trainer_set_params", [TN, POINTER(T.TrainerParams)], c_int)
_api("mixflow_trainer_step", [TN, FP, IP, c_int64, c_uint64, FP], c_int)
_api("mixflow_trainer_step_features", [TN, FP, IP, FP, c_int64, c_int64, c_uint64, FP], c_int)
_api("mixflow_trainer_trained_without_features", [TN], c_int32)
_api("mixflow_trainer_step_count", [TN], c_int64)
_api("mixflow_blas_info", [], c_char_p)
_api("mixflow_version", [], c_char_p)
_api("mixflow_version_number", [], c_uint32)


def check(status: int) -> None:
    """Raises the exception of a non-zero status with the thread's last-error message."""
    if status != 0:
        from .errors import for_status
        message = lib.mixflow_last_error().decode("utf-8", "replace")
        raise for_status(status)(message, status)


def fptr(a) -> "ctypes._Pointer | None":
    """A float* to a C-contiguous float32 numpy array (None passes NULL)."""
    if a is None:
        return None
    return a.ctypes.data_as(FP)

