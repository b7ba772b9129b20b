"""ctypes mirrors of include/mixflow_types.h, field for field and in the same order.

tests/test_header_parity.py checks these against the header.
"""
import ctypes
from ctypes import c_char, c_float, c_int32, c_int64, c_uint32, c_uint64, c_void_p, CFUNCTYPE, POINTER
from enum import IntEnum

ABI_VERSION = 1  # MIXFLOW_ABI_VERSION


class Status(IntEnum):
    OK = 0
    ERR_INVALID_ARGUMENT = 1
    ERR_INVALID_HANDLE = 2
    ERR_OUT_OF_MEMORY = 3
    ERR_IO = 4
    ERR_FORMAT = 5
    ERR_UNSUPPORTED = 6
    ERR_CALLBACK = 7
    ERR_CANCELLED = 8
    ERR_ABI_MISMATCH = 9
    ERR_INTERNAL = 10


class Path(IntEnum):
    LINEAR = 0
    GVP = 1
    VP = 2


class Convention(IntEnum):
    SIT = 0
    RAE = 1
    REPA = 2


class Prediction(IntEnum):
    VELOCITY = 0
    NOISE = 1
    SCORE = 2


class LossWeight(IntEnum):
    NONE = 0
    VELOCITY = 1
    LIKELIHOOD = 2


class TimeDist(IntEnum):
    UNIFORM = 0
    BETA21 = 1
    LOGIT_NORMAL = 2


class TargetTime(IntEnum):
    T = 0
    M = 1


class TransportHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class TransportParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("path", c_int32),
        ("convention", c_int32),
        ("prediction", c_int32),
        ("loss_weight", c_int32),
        ("time_dist", c_int32),
        ("target_time", c_int32),
        ("gamma", c_float),
        ("train_eps", c_float),
        ("time_shift", c_float),
        ("logit_normal_mean", c_float),
        ("logit_normal_std", c_float),
        ("input_perturbation", c_float),
        ("num_threads", c_int32),
    ]


# ---- model -----------------------------------------------------------------------------------------------
MODEL_MAX_NDIM = 4      # MIXFLOW_MODEL_MAX_NDIM
MODEL_ARCH_SIZE = 32    # MIXFLOW_MODEL_ARCH_SIZE


class ModelHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("arch", c_char * MODEL_ARCH_SIZE),
        ("depth", c_int32),
        ("hidden", c_int32),
        ("heads", c_int32),
        ("patch", c_int32),
        ("input_size", c_int32),
        ("in_channels", c_int32),
        ("num_classes", c_int32),
        ("learn_sigma", c_int32),
        ("seed", c_uint64),
        ("class_dropout", c_float),
        ("num_threads", c_int32),
        # ---- appended for DiT^DH (struct_size 88 before) ----
        ("head_depth", c_int32),
        ("head_hidden", c_int32),
        ("head_heads", c_int32),
        ("reserved0", c_int32),
    ]


# ---- trainer ---------------------------------------------------------------------------------------------
class TrainerHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


GradientFn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_float), c_int64, c_int64)


class TrainerParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("lr", c_float),
        ("final_lr", c_float),
        ("decay_start", c_int64),
        ("decay_end", c_int64),
        ("warmup", c_int64),
        ("beta1", c_float),
        ("beta2", c_float),
        ("eps", c_float),
        ("weight_decay", c_float),
        ("ema_decay", c_float),
        ("max_grad_norm", c_float),
        ("seed", c_uint64),
        ("num_threads", c_int32),
    ]


# ---- onnx tensor files ------------------------------------------------------------------------------------
class TensorFileHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class TensorWriterHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]
