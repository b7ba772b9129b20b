"""ctypes mirrors of include/mixflow_types.h, field for field and in the same order.

tests/test_header_parity.py checks these against the header.
"""
import ctypes
from ctypes import c_char, c_float, c_int32, c_uint32
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


# ---- data and evaluation ----------------------------------------------------------------------------------
class IdxDtype(IntEnum):
    UINT8 = 0x08
    INT8 = 0x09
    INT16 = 0x0B
    INT32 = 0x0C
    FLOAT32 = 0x0D
    FLOAT64 = 0x0E


class PixelScaling(IntEnum):
    NONE = 0
    SYMMETRIC = 1
    UNIT = 2


class IdxHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class FeatnetHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]
