/*
 * mixflow_types.h — the C-owned types of libmixflow (hand-written; the functions are in mixflow.h,
 * which is generated from the Swift sources and includes this file).
 *
 * libmixflow post-trains flow-matching image models (SiT, REPA, RAE) with MixFlow
 * ("MixFlow Training: Alleviating Exposure Bias with Slowed Interpolation Mixture", arXiv 2512.19311)
 * and samples from them.
 *
 * The conventions (errors, ownership, params structs and struct_size, threads, determinism, time) are
 * stated once, at the top of mixflow.h.
 */
#ifndef MIXFLOW_TYPES_H
#define MIXFLOW_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Version and ABI. Every macro has a runtime twin: mixflow_version(), mixflow_version_number(),
 * mixflow_abi_version().                                                                           */
#define MIXFLOW_VERSION_MAJOR 0
#define MIXFLOW_VERSION_MINOR 1
#define MIXFLOW_VERSION_PATCH 0
#define MIXFLOW_VERSION_STRING "0.1.0"
#define MIXFLOW_VERSION_NUMBER (MIXFLOW_VERSION_MAJOR * 10000 + MIXFLOW_VERSION_MINOR * 100 + MIXFLOW_VERSION_PATCH)
#define MIXFLOW_ABI_VERSION 1 /* bumped on any incompatible change to a released symbol or struct */

/* ------------------------------------------------------------------------------------------------ */
/* Status codes. Values are frozen forever; new codes are only appended.                             */
typedef enum mixflow_status {
    MIXFLOW_OK = 0,
    MIXFLOW_ERR_INVALID_ARGUMENT = 1, /* NULL, bad shape, NaN/Inf, value out of range, unknown enum */
    MIXFLOW_ERR_INVALID_HANDLE = 2,   /* a handle of the wrong kind */
    MIXFLOW_ERR_OUT_OF_MEMORY = 3,
    MIXFLOW_ERR_IO = 4,               /* a file could not be opened, read or written */
    MIXFLOW_ERR_FORMAT = 5,           /* a hostile, truncated or corrupt file (ONNX, .pt, IDX, checkpoint) */
    MIXFLOW_ERR_UNSUPPORTED = 6,      /* valid but not supported by this build or this combination */
    MIXFLOW_ERR_CALLBACK = 7,         /* a user callback returned non-zero */
    MIXFLOW_ERR_CANCELLED = 8,        /* a progress callback asked to stop */
    MIXFLOW_ERR_ABI_MISMATCH = 9,     /* struct_size larger than this library knows (newer header) */
    MIXFLOW_ERR_INTERNAL = 10         /* a bug in libmixflow: please report it with the message */
} mixflow_status;

/* ------------------------------------------------------------------------------------------------ */
/* Handles. Never dereference them; the one-byte body only gives C a complete, distinct type.        */
typedef struct mixflow_transport { char _private; } mixflow_transport;

/* ------------------------------------------------------------------------------------------------ */
/* Interpolant paths x_t = alpha_t * x1 + sigma_t * x0 (x1 data, x0 noise), written in the SiT
 * convention (t = 0 noise, t = 1 data):
 *   LINEAR: alpha = t,          sigma = 1 - t
 *   GVP:    alpha = sin(pi t/2), sigma = cos(pi t/2)
 *   VP:     alpha = exp(L(t)),   sigma = sqrt(1 - exp(2 L(t))),
 *           L(t) = -(1-t)^2 (20 - 0.1)/4 - (1-t) 0.1/2
 * In the noise-at-1 conventions the same path is used at 1 - t (its exact time reversal).               */
typedef enum mixflow_path {
    MIXFLOW_PATH_LINEAR = 0,
    MIXFLOW_PATH_GVP = 1,
    MIXFLOW_PATH_VP = 2
} mixflow_path;

/* Time conventions. The network always receives the raw t of its own convention.
 *   SIT:  t = 0 noise, t = 1 data (SiT, the MixFlow paper).
 *   RAE:  t = 0 data, t = 1 noise, and the training/sampling interval ends at 1 - 1/1000 (RAE's rule).
 *   REPA: t = 0 data, t = 1 noise, interval [0, 1] (REPA's loss.py).                                   */
typedef enum mixflow_convention {
    MIXFLOW_CONVENTION_SIT = 0,
    MIXFLOW_CONVENTION_RAE = 1,
    MIXFLOW_CONVENTION_REPA = 2
} mixflow_convention;

/* What the network predicts. */
typedef enum mixflow_prediction {
    MIXFLOW_PREDICTION_VELOCITY = 0, /* d x_t / d t in the model's own convention */
    MIXFLOW_PREDICTION_NOISE = 1,    /* x0 (epsilon) */
    MIXFLOW_PREDICTION_SCORE = 2     /* grad log p_t(x) = -x0 / sigma_t for the conditional path */
} mixflow_prediction;

/* SiT's loss weights ("loss_type"); ignored for velocity prediction, as in the official code.
 *   NONE: 1.  VELOCITY: (drift_var / sigma_t)^2.  LIKELIHOOD: drift_var / sigma_t^2,
 *   with drift_var = (d_alpha/alpha) sigma^2 - sigma d_sigma evaluated in the SiT convention.        */
typedef enum mixflow_loss_weight {
    MIXFLOW_LOSS_WEIGHT_NONE = 0,
    MIXFLOW_LOSS_WEIGHT_VELOCITY = 1,
    MIXFLOW_LOSS_WEIGHT_LIKELIHOOD = 2
} mixflow_loss_weight;

/* Distribution of the training time t. A uniform draw u ~ U[t0, t1) on the convention's training
 * interval is mapped:
 *   UNIFORM:      t = u.
 *   BETA21:       MixFlow's Beta(2,1) with density 2t at the data end: t = sqrt(u) in the SIT convention,
 *                 t = 1 - sqrt(u) in RAE/REPA (exactly MixFlow-RAE's line).
 *   LOGIT_NORMAL: RAE's truncated logit-normal on [t0, t1] by inverse CDF, parameters
 *                 logit_normal_mean / logit_normal_std, on the convention's own t.
 * The time shift (time_shift, RAE's dimension shift) is applied after the draw.                     */
typedef enum mixflow_time_dist {
    MIXFLOW_TIME_DIST_UNIFORM = 0,
    MIXFLOW_TIME_DIST_BETA21 = 1,
    MIXFLOW_TIME_DIST_LOGIT_NORMAL = 2
} mixflow_time_dist;

/* At which time the regression target (and the loss weight) is evaluated.
 *   T: the training time t, with the same (x0, x1): the official MixFlow code pattern.
 *   M: the slowed time m: the paper's loss E|u(x_m, t) - u*(x_m, m)|^2.
 * Both coincide for the Linear path with velocity or noise prediction.                               */
typedef enum mixflow_target_time {
    MIXFLOW_TARGET_TIME_T = 0,
    MIXFLOW_TARGET_TIME_M = 1
} mixflow_target_time;

/* How the input time m is drawn for the label t.
 *   SLOWED:  MixFlow's slowed interpolation mixture m ~ U[(1-gamma) t, t] (mirrored in RAE/REPA).
 *   UNIFORM: the paper's ablation "m ~ U[0, 1]": m uniform on the training interval, independent of t
 *            (also at lower noise than t), then time-shifted like t; gamma is not used.             */
typedef enum mixflow_mixture {
    MIXFLOW_MIXTURE_SLOWED = 0,
    MIXFLOW_MIXTURE_UNIFORM = 1
} mixflow_mixture;

/* MixFlow transport parameters. Fill with mixflow_transport_default_params (or _preset_params), then edit.
 * Each float field is read as the shortest decimal that rounds to it (gamma 0.8f is used as the double 0.8):
 * the CLI and the Swift core round their values the same way, so every entry point draws the same numbers
 * and checkpoints store the decimal ("transport.gamma=0.8"). */
typedef struct mixflow_transport_params {
    uint32_t struct_size;           /* set by the filler; leave it alone */
    mixflow_path path;              /* MIXFLOW_PATH_LINEAR */
    mixflow_convention convention;  /* MIXFLOW_CONVENTION_SIT */
    mixflow_prediction prediction;  /* MIXFLOW_PREDICTION_VELOCITY */
    mixflow_loss_weight loss_weight;/* MIXFLOW_LOSS_WEIGHT_NONE */
    mixflow_time_dist time_dist;    /* MIXFLOW_TIME_DIST_BETA21 */
    mixflow_target_time target_time;/* MIXFLOW_TARGET_TIME_T */
    float gamma;                    /* 0.8; slowed time m ~ U[(1-gamma) t, t] (mirrored in RAE/REPA);
                                       0 = standard flow matching exactly; must be in [0, 1] */
    float train_eps;                /* -1 = the official rule (VP 1e-5; Linear/GVP non-velocity 1e-3;
                                       Linear/GVP velocity 0); otherwise in [0, 0.5) */
    float time_shift;               /* 1 = none; RAE's s = sqrt(C*H*W / 4096); must be >= 1 */
    float logit_normal_mean;        /* 0; used by MIXFLOW_TIME_DIST_LOGIT_NORMAL */
    float logit_normal_std;         /* 1; must be > 0 */
    float input_perturbation;       /* 0 = off; the Input Perturbation baseline (Ning et al. 2023):
                                       x_in = alpha x1 + sigma (x0 + lambda xi), target from x0; >= 0 */
    int32_t num_threads;            /* 0 = all cores; results are identical for every value; >= 0 */
    mixflow_mixture mixture;        /* MIXFLOW_MIXTURE_SLOWED (appended: a 56-byte struct means SLOWED) */
} mixflow_transport_params;

/* ---- model ---------------------------------------------------------------------------------- */
/* A native SiT (Scalable Interpolant Transformer): forward pass and gradients, parameters held under the
 * official PyTorch state-dict names and shapes (e.g. "blocks.3.attn.qkv.weight" [3D, D]), so a converted
 * official or REPA checkpoint maps one to one.                                                      */
typedef struct mixflow_model { char _private; } mixflow_model;

/* Most dimensions a model tensor has (x_embedder.proj.weight is [D, C, p, p]). */
#define MIXFLOW_MODEL_MAX_NDIM 4
/* Capacity of mixflow_model_params.arch, including the terminating NUL. */
#define MIXFLOW_MODEL_ARCH_SIZE 32

/* Model parameters (SiT or DiT^DH). Fill with mixflow_model_default_params, then edit.
 * DiT^DH (RAE stage 2): arch "DiTDH-XL" or "DiTDH-S" (official latents: in_channels 768, input_size 16 at
 * 256 px, 32 at 512 px), or "DiTDH" for a custom shape: depth/hidden/heads give the encoder and
 * head_depth/head_hidden/head_heads the head; patch must be 0 or 1 (patch size 1) and learn_sigma is ignored. */
typedef struct mixflow_model_params {
    uint32_t struct_size;                 /* set by the filler; leave it alone */
    char arch[32];                        /* MIXFLOW_MODEL_ARCH_SIZE; "SiT-XL/2"; one of SiT-{S,B,L,XL}/{2,4,8},
                                             DiTDH-XL, DiTDH-S (case-insensitive), NUL-terminated; "" for a
                                             custom SiT and "DiTDH" for a custom DiT^DH shape from
                                             depth/hidden/heads(/patch) and head_* */
    int32_t depth;                        /* 0; custom only (arch ""): number of blocks, in [1, 1024] */
    int32_t hidden;                       /* 0; custom only: width D, a multiple of heads and of 4 */
    int32_t heads;                        /* 0; custom only: attention heads, in [1, hidden] */
    int32_t patch;                        /* 0; custom only: patch size p, in [1, 64] */
    int32_t input_size;                   /* 32; height = width of the input, a multiple of the patch size */
    int32_t in_channels;                  /* 4; channels C of input and output */
    int32_t num_classes;                  /* 1000; labels are 0..num_classes-1, num_classes = null class */
    int32_t learn_sigma;                  /* 1; 1 = the official 2C-channel head (the sigma half is dropped
                                             from the output, as upstream); 0 = a C-channel head */
    uint64_t seed;                        /* 0; seed of the official from-scratch initialisation */
    float class_dropout;                  /* 0.1; training probability of the null label; in [0, 1) */
    int32_t num_threads;                  /* 0 = all cores; results are identical for every value; >= 0.
                                             libmixflow parallelises its GEMMs itself and pins the system
                                             OpenBLAS to one thread (openblas_set_num_threads(1)) on first use */
    /* ---- appended for DiT^DH (struct_size 88 before; older callers get the defaults below) ---- */
    int32_t head_depth;                   /* 0; custom DiT^DH only (arch "DiTDH"): blocks of the DDT head, in [1, 1024] */
    int32_t head_hidden;                  /* 0; custom DiT^DH only: head width, a multiple of 4·head_heads */
    int32_t head_heads;                   /* 0; custom DiT^DH only: head attention heads */
    int32_t reserved0;                    /* 0; must be 0 (keeps the struct free of tail padding) */
} mixflow_model_params;

/* ---- trainer -------------------------------------------------------------------------------- */
/* MixFlow post-training of a native model: transport + forward + backward + AdamW + EMA per step.   */
typedef struct mixflow_trainer { char _private; } mixflow_trainer;

/* Receives the flat gradient buffer (`count` floats, the model's parameter layout) after backward and
 * before clipping and the update, e.g. to all-reduce (average) it across processes in place. Return 0
 * to continue; non-zero aborts the step with MIXFLOW_ERR_CALLBACK before any parameter changes. */
typedef int32_t (*mixflow_gradient_fn)(void *user_data, float *gradients, int64_t count, int64_t step);

/* Trainer parameters. Fill with mixflow_trainer_default_params (SiT recipe) or _preset_params. */
typedef struct mixflow_trainer_params {
    uint32_t struct_size;   /* set by the filler; leave it alone */
    float lr;               /* 1e-4; the learning rate (base of the schedule); >= 0 */
    float final_lr;         /* 1e-4; linear decay target (ignored when decay_end is 0); >= 0 */
    int64_t decay_start;    /* 0; step where the linear decay starts */
    int64_t decay_end;      /* 0 = constant learning rate; else the step where final_lr is reached (> decay_start) */
    int64_t warmup;         /* 0; linear warm-up from 0 over this many steps */
    float beta1;            /* 0.9; in [0, 1) */
    float beta2;            /* 0.999 (SiT); 0.95 (RAE); in [0, 1) */
    float eps;              /* 1e-8; > 0 */
    float weight_decay;     /* 0; decoupled (AdamW); >= 0 */
    float ema_decay;        /* 0.9999 (SiT); 0.9995 (RAE); 0 = no EMA copy; in [0, 1] */
    float max_grad_norm;    /* 0 = no clipping (SiT); 1.0 (RAE, REPA); >= 0 */
    uint64_t seed;          /* 0; keys every random draw together with the step and the sample index */
    int32_t num_threads;    /* 0 = all cores; results are identical for every value; >= 0 */
    double proj_coeff;      /* 0.5; REPA's lambda in denoise + lambda*proj (models with projectors, steps with
                               features only); >= 0. Appended after ABI 1: an older, shorter struct gets 0.5 */
} mixflow_trainer_params;

/* ---- onnx ---- */

/* A tensor file opened for reading (mixflow_tensor_file_load): the index of an ONNX model's initializers and
 * metadata; values are read on demand. A writer of such files (mixflow_tensor_writer_create). */
typedef struct mixflow_tensor_file { char _private; } mixflow_tensor_file;
typedef struct mixflow_tensor_writer { char _private; } mixflow_tensor_writer;

/* Element types, with the values of ONNX TensorProto.DataType (so a file's code passes through unchanged;
 * codes outside this list are reported as they are). mixflow_tensor_file_read converts every type up to
 * MIXFLOW_DTYPE_UINT64 and BFLOAT16 to float32, except STRING, COMPLEX64 and COMPLEX128.              */
typedef enum mixflow_dtype {
    MIXFLOW_DTYPE_UNDEFINED = 0,
    MIXFLOW_DTYPE_FLOAT32 = 1,
    MIXFLOW_DTYPE_UINT8 = 2,
    MIXFLOW_DTYPE_INT8 = 3,
    MIXFLOW_DTYPE_UINT16 = 4,
    MIXFLOW_DTYPE_INT16 = 5,
    MIXFLOW_DTYPE_INT32 = 6,
    MIXFLOW_DTYPE_INT64 = 7,
    MIXFLOW_DTYPE_STRING = 8,
    MIXFLOW_DTYPE_BOOL = 9,
    MIXFLOW_DTYPE_FLOAT16 = 10,
    MIXFLOW_DTYPE_FLOAT64 = 11,
    MIXFLOW_DTYPE_UINT32 = 12,
    MIXFLOW_DTYPE_UINT64 = 13,
    MIXFLOW_DTYPE_COMPLEX64 = 14,
    MIXFLOW_DTYPE_COMPLEX128 = 15,
    MIXFLOW_DTYPE_BFLOAT16 = 16
} mixflow_dtype;

/* Where a tensor's values are stored in the file. */
typedef enum mixflow_tensor_storage {
    MIXFLOW_TENSOR_STORAGE_EMPTY = 0,     /* no data: a tensor with zero elements */
    MIXFLOW_TENSOR_STORAGE_RAW = 1,       /* inline raw_data */
    MIXFLOW_TENSOR_STORAGE_TYPED = 2,     /* inline typed field (float_data, int32_data, ...) */
    MIXFLOW_TENSOR_STORAGE_EXTERNAL = 3   /* external data file next to the model */
} mixflow_tensor_storage;
/* ---- samplers ---- */
/* Integrators (docs/exactness.md §4.2–§4.3). ODE methods follow torchdiffeq (heun = heun2, which evaluates the end point also on
 * the last step; rk4 = torchdiffeq's 'rk4', Kutta's 3/8 rule; dopri5 adaptive with atol/rtol). In the REPA
 * convention EULER/HEUN are REPA's loop (Heun corrects all but the last step) and SDE_EULER is REPA's
 * Euler-Maruyama sampler. SDE methods are SiT's (sit convention) or REPA's; RAE's SDE is not offered.       */
typedef enum mixflow_sampler_method {
    MIXFLOW_SAMPLER_EULER = 0,
    MIXFLOW_SAMPLER_HEUN = 1,
    MIXFLOW_SAMPLER_MIDPOINT = 2,
    MIXFLOW_SAMPLER_RK4 = 3,
    MIXFLOW_SAMPLER_DOPRI5 = 4,
    MIXFLOW_SAMPLER_SDE_EULER = 5,
    MIXFLOW_SAMPLER_SDE_HEUN = 6
} mixflow_sampler_method;

/* SiT's SDE diffusion w(s) at SiT time s (norm = diffusion_norm):
 *   SIGMA: norm sigma_s.  LINEAR: norm (1 - s).  SBDM: norm drift_var(s) (singular at s = 0).
 *   DECREASING: (norm cos(pi s) + 1)^2 / 4.  INCREASING_DECREASING: norm sin^2(pi s).                      */
typedef enum mixflow_diffusion_form {
    MIXFLOW_DIFFUSION_SIGMA = 0,
    MIXFLOW_DIFFUSION_LINEAR = 1,
    MIXFLOW_DIFFUSION_SBDM = 2,
    MIXFLOW_DIFFUSION_DECREASING = 3,
    MIXFLOW_DIFFUSION_INCREASING_DECREASING = 4
} mixflow_diffusion_form;

/* SiT's last SDE step at t1, applied once after the loop, of size last_step_size:
 *   NONE: identity (and last_step_size is treated as 0 for the grid).  MEAN: x + sde_drift * size.
 *   EULER: x + v * size.  TWEEDIE: x / alpha + sigma^2 / alpha * score (a jump to the data end).           */
typedef enum mixflow_last_step {
    MIXFLOW_LAST_STEP_NONE = 0,
    MIXFLOW_LAST_STEP_MEAN = 1,
    MIXFLOW_LAST_STEP_EULER = 2,
    MIXFLOW_LAST_STEP_TWEEDIE = 3
} mixflow_last_step;

/* Guidance: CFG doubles the batch with the null class, g = u + w (c - u); AUTO (RAE's autoguidance) calls a
 * second, weaker model G on the same labels, g = G + w (main - G). Both only inside [t_min, t_max].       */
typedef enum mixflow_guidance {
    MIXFLOW_GUIDANCE_NONE = 0,
    MIXFLOW_GUIDANCE_CFG = 1,
    MIXFLOW_GUIDANCE_AUTO = 2
} mixflow_guidance;

/* A network: writes model(x, t, y) to out and returns 0, or a non-zero code that stops sampling with
 * MIXFLOW_ERR_CALLBACK (the message gives the code, the step and the time).
 *   x: [batch, dim], t: [batch] in the model's own convention, y: [batch] labels or NULL,
 *   out: [batch, dim] in the model's prediction type. Pointers are valid only during the call.
 * Called synchronously on the thread that called mixflow_sample, never concurrently. With CFG the batch is
 * 2 x the caller's batch (conditional rows first, then the null-class rows).                               */
typedef int32_t (*mixflow_model_fn)(void *user_data, int64_t batch, int64_t dim, const float *x, const float *t,
                                    const int32_t *y, float *out);

typedef struct mixflow_sampler { char _private; } mixflow_sampler;

/* Sampler parameters. Fill with mixflow_sampler_default_params, then edit. */
typedef struct mixflow_sampler_params {
    uint32_t struct_size;               /* set by the filler; leave it alone */
    mixflow_sampler_method method;      /* MIXFLOW_SAMPLER_HEUN */
    mixflow_path path;                  /* MIXFLOW_PATH_LINEAR */
    mixflow_convention convention;      /* MIXFLOW_CONVENTION_SIT; picks the codebase's grid and loop */
    mixflow_prediction prediction;      /* MIXFLOW_PREDICTION_VELOCITY */
    int32_t num_steps;                  /* 50; grid POINTS for SIT and RAE (N - 1 intervals), STEPS for REPA;
                                           >= 2 (REPA >= 1) */
    uint64_t seed;                      /* 0; SDE noise is keyed by (seed, step, first_sample + row) */
    float sample_eps;                   /* -1 = SiT's rule (VP or non-velocity 1e-3, Linear/GVP velocity 0);
                                           otherwise in [0, 0.5) */
    float time_shift;                   /* 1 = none; RAE's grid shift s = sqrt(C*H*W / 4096); >= 1 */
    float atol;                         /* 1e-6; dopri5 only; > 0 */
    float rtol;                         /* 1e-3; dopri5 only; >= 0 */
    mixflow_diffusion_form diffusion_form; /* MIXFLOW_DIFFUSION_SIGMA; SiT SDE only */
    float diffusion_norm;               /* 1; >= 0 */
    mixflow_last_step last_step;        /* MIXFLOW_LAST_STEP_MEAN; SiT SDE only */
    float last_step_size;               /* 0.04; in [0, 1) */
    mixflow_guidance guidance;          /* MIXFLOW_GUIDANCE_NONE */
    float guidance_scale;               /* 1 (w) */
    int32_t null_class;                 /* 1000; the CFG null label */
    int32_t channels;                   /* 0; C of a sample laid out [C, H, W]; needed when guided_channels > 0 */
    int32_t guided_channels;            /* 0 = guide all channels (RAE, REPA); 3 = SiT's rule (the rest keeps the
                                           conditional output) */
    float guidance_t_min;               /* 0; guidance only where t_min <= t <= t_max (model convention) */
    float guidance_t_max;               /* 1 */
    float eps_scale_base;               /* 1; Epsilon Scaling (Ning et al. 2024): the predicted noise is divided by */
    float eps_scale_slope;              /* 0;   lambda(n) = base + slope * n at noise level n in [0, 1] (must stay > 0) */
    float query_shift_constant;         /* 0; time-shifted sampler: the network sees noise level */
    float query_shift_proportional;     /* 0;   n' = clamp(n + constant + proportional * n, 0, 1) instead of n */
} mixflow_sampler_params;

/* ---- slow flow ---- */
/* The "ground truth" a generated state x_hat at grid time t is compared with, to find the nearest time m of
 * x_m = alpha_m x1 + sigma_m x0 (times in the paper's convention, 0 = noise, 1 = data):
 *   ENDPOINT:     x0 = the starting noise, x1 = the trajectory's own final sample.
 *   NEAREST_DATA: x0 = the starting noise, x1 = the data point that, with its best m, is nearest (joint min).
 *   NOISE_LEVEL:  m whose marginal second moment alpha_m^2 E|x1|^2/D + sigma_m^2 equals |x_hat|^2/D, with
 *                 E|x1|^2/D from the data set; of two roots, the one nearest t.                            */
typedef enum mixflow_slow_flow_reference {
    MIXFLOW_SLOW_FLOW_ENDPOINT = 0,
    MIXFLOW_SLOW_FLOW_NEAREST_DATA = 1,
    MIXFLOW_SLOW_FLOW_NOISE_LEVEL = 2
} mixflow_slow_flow_reference;

/* Columns of mixflow_slow_flow_stats, per grid time: t, mean m, quantiles 5/25/50/75/95 % of m, mean m/t,
 * quantiles 5/25/50/75/95 % of m/t (NaN at t = 0), fraction with m <= t.                                  */
#define MIXFLOW_SLOW_FLOW_NUM_COLUMNS 14

typedef enum mixflow_export_format {
    MIXFLOW_EXPORT_CSV = 0,
    MIXFLOW_EXPORT_JSON = 1
} mixflow_export_format;

/* ---- model onnx ---- */
/* SiT <-> ONNX (mixflow_model_load_onnx, mixflow_model_save_onnx): the weights as initializers under the
 * official state-dict names, model.* architecture metadata, optionally the runnable forward graph.        */

/* Options of mixflow_model_load_onnx. Fill with mixflow_model_load_default_params, then edit. */
typedef struct mixflow_model_load_params {
    uint32_t struct_size;   /* set by the filler; leave it alone */
    int32_t heads;          /* 0 = the file's model.heads metadata, else the official table (hidden 384, 768,
                               1024, 1152 -> 6, 12, 16, 16); > 0 overrides both; must divide hidden */
    int32_t num_threads;    /* 0 = all cores; results are identical for every value; >= 0 */
} mixflow_model_load_params;

/* Options of mixflow_model_save_onnx. Fill with mixflow_model_save_default_params, then edit. */
typedef struct mixflow_model_save_params {
    uint32_t struct_size;                 /* set by the filler; leave it alone */
    int32_t graph;                        /* 1 = the runnable forward graph (inputs x, t, y; output out, and for
                                             REPA's SiT z_tilde_<k> per projector) over the initializers;
                                             0 = initializers and metadata only */
    int64_t external_threshold;           /* 1048576; tensors of at least this many bytes go to "<file>.data"
                                             next to the model; -1 = all inline; must be >= -1 */
    int64_t step;                         /* -1 = not recorded; else >= 0, written as metadata mixflow.step */
    const mixflow_transport *transport;   /* NULL; else its settings (path, convention, prediction, gamma,
                                             ...) are written as transport.* metadata; not kept */
    const char *const *metadata_keys;     /* NULL; num_metadata extra keys (UTF-8, unique, not model.* nor
                                             mixflow.format, nor keys written from step or transport) */
    const char *const *metadata_values;   /* NULL; their values */
    int32_t num_metadata;                 /* 0; >= 0 */
} mixflow_model_save_params;
/* ---- data and evaluation ---- */
/* IDX arrays (the MNIST container), plain or .gz: mixflow_idx_load, then _info and _read_*.           */
typedef struct mixflow_idx { char _private; } mixflow_idx;

/* Element types of an IDX file (the third byte of its magic number). */
typedef enum mixflow_idx_dtype {
    MIXFLOW_IDX_DTYPE_UINT8 = 0x08,
    MIXFLOW_IDX_DTYPE_INT8 = 0x09,
    MIXFLOW_IDX_DTYPE_INT16 = 0x0B,
    MIXFLOW_IDX_DTYPE_INT32 = 0x0C,
    MIXFLOW_IDX_DTYPE_FLOAT32 = 0x0D,
    MIXFLOW_IDX_DTYPE_FLOAT64 = 0x0E
} mixflow_idx_dtype;

/* How mixflow_idx_read_f32 maps stored values to float32.
 *   NONE:      the value itself (any dtype).
 *   SYMMETRIC: uint8 only, x / 127.5 - 1 in float32: 0 -> -1, 255 -> 1 (the range models are trained on).
 *   UNIT:      uint8 only, x / 255 in float32: 0 -> 0, 255 -> 1.                                          */
typedef enum mixflow_pixel_scaling {
    MIXFLOW_PIXEL_SCALING_NONE = 0,
    MIXFLOW_PIXEL_SCALING_SYMMETRIC = 1,
    MIXFLOW_PIXEL_SCALING_UNIT = 2
} mixflow_pixel_scaling;

/* The fixed Fashion-MNIST classifier whose penultimate activations are the features of
 * "FD (Fashion-MNIST classifier features)", KID and conditional accuracy (never call it FID).
 * The shipped weights are share/featnet/fmnist-cnn.mxfnet: three 3x3 convolutions (32, 32, 64 channels,
 * ReLU, two 2x2 max-pools), then 3136 -> 128 (ReLU; the features) -> 10 (logits); inputs [1, 28, 28] in [-1, 1]. */
typedef struct mixflow_featnet { char _private; } mixflow_featnet;

#ifdef __cplusplus
}
#endif

#endif /* MIXFLOW_TYPES_H */
