"""ctypes mirrors of include/mixflow_types.h, field for field and in the same order.

tests/test_header_parity.py checks these against the header.
"""
import ctypes
from ctypes import c_double, c_char, c_float, c_int32, c_int64, c_uint32, c_uint64, c_void_p, CFUNCTYPE, POINTER
from enum import IntEnum

from ._args import CStruct

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


class Mixture(IntEnum):
    SLOWED = 0
    UNIFORM = 1


class TransportHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class TransportParams(CStruct):
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
        ("mixture", c_int32),
    ]


# ---- model -----------------------------------------------------------------------------------------------
MODEL_MAX_NDIM = 4      # MIXFLOW_MODEL_MAX_NDIM
MODEL_ARCH_SIZE = 32    # MIXFLOW_MODEL_ARCH_SIZE


class ModelHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class ModelParams(CStruct):
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


class TrainerParams(CStruct):
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
        ("proj_coeff", c_double),
    ]


# ---- onnx tensor files ------------------------------------------------------------------------------------
class TensorFileHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class TensorWriterHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]
# ---- samplers --------------------------------------------------------------------------------------------
class SamplerMethod(IntEnum):
    EULER = 0
    HEUN = 1
    MIDPOINT = 2
    RK4 = 3
    DOPRI5 = 4
    SDE_EULER = 5
    SDE_HEUN = 6


class DiffusionForm(IntEnum):
    SIGMA = 0
    LINEAR = 1
    SBDM = 2
    DECREASING = 3
    INCREASING_DECREASING = 4


class LastStep(IntEnum):
    NONE = 0
    MEAN = 1
    EULER = 2
    TWEEDIE = 3


class Guidance(IntEnum):
    NONE = 0
    CFG = 1
    AUTO = 2


# int32_t (*mixflow_model_fn)(void *user_data, int64_t batch, int64_t dim, const float *x, const float *t,
#                             const int32_t *y, float *out)
MODEL_FN = ctypes.CFUNCTYPE(c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(c_float),
                            ctypes.POINTER(c_float), ctypes.POINTER(c_int32), ctypes.POINTER(c_float))


class SamplerHandle(ctypes.Structure):
    _fields_ = [("_private", c_char)]


class SamplerParams(CStruct):
    _fields_ = [
        ("struct_size", c_uint32),
        ("method", c_int32),
        ("path", c_int32),
        ("convention", c_int32),
        ("prediction", c_int32),
        ("num_steps", c_int32),
        ("seed", ctypes.c_uint64),
        ("sample_eps", c_float),
        ("time_shift", c_float),
        ("atol", c_float),
        ("rtol", c_float),
        ("diffusion_form", c_int32),
        ("diffusion_norm", c_float),
        ("last_step", c_int32),
        ("last_step_size", c_float),
        ("guidance", c_int32),
        ("guidance_scale", c_float),
        ("null_class", c_int32),
        ("channels", c_int32),
        ("guided_channels", c_int32),
        ("guidance_t_min", c_float),
        ("guidance_t_max", c_float),
        ("eps_scale_base", c_float),
        ("eps_scale_slope", c_float),
        ("query_shift_constant", c_float),
        ("query_shift_proportional", c_float),
    ]


# ---- slow flow -------------------------------------------------------------------------------------------
class SlowFlowReference(IntEnum):
    ENDPOINT = 0
    NEAREST_DATA = 1
    NOISE_LEVEL = 2


SLOW_FLOW_NUM_COLUMNS = 14  # MIXFLOW_SLOW_FLOW_NUM_COLUMNS


class ExportFormat(IntEnum):
    CSV = 0
    JSON = 1


# ---- model onnx -------------------------------------------------------------------------------------------
class ModelLoadParams(CStruct):
    _fields_ = [
        ("struct_size", c_uint32),
        ("heads", c_int32),
        ("num_threads", c_int32),
    ]


class ModelSaveParams(CStruct):
    _fields_ = [
        ("struct_size", c_uint32),
        ("graph", c_int32),
        ("external_threshold", c_int64),
        ("step", c_int64),
        ("transport", POINTER(TransportHandle)),
        ("metadata_keys", POINTER(ctypes.c_char_p)),
        ("metadata_values", POINTER(ctypes.c_char_p)),
        ("num_metadata", c_int32),
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
