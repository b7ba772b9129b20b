/* Compile-time checks that the C-owned types have the layout the bindings assume
 * (bindings/python/mixflow/_types.py mirrors these structs field for field). */
#include "mixflow_types.h"
#include <stddef.h>

_Static_assert(sizeof(mixflow_status) == 4, "enums are 32-bit");
_Static_assert(sizeof(mixflow_path) == 4, "enums are 32-bit");
_Static_assert(offsetof(mixflow_transport_params, struct_size) == 0, "struct_size comes first");
_Static_assert(sizeof(mixflow_transport_params) == 60, "transport params layout");
_Static_assert(offsetof(mixflow_model_params, struct_size) == 0, "struct_size comes first");
_Static_assert(offsetof(mixflow_model_params, seed) == 72, "model params: seed is 8-byte aligned, no padding");
_Static_assert(sizeof(mixflow_model_params) == 104, "model params layout (88 before the DiT^DH fields)");
_Static_assert(offsetof(mixflow_model_params, head_depth) == 88, "DiT^DH fields are appended");
_Static_assert(sizeof(((mixflow_model_params *)0)->arch) == MIXFLOW_MODEL_ARCH_SIZE, "arch capacity");
_Static_assert(sizeof(mixflow_trainer_params) == 88, "trainer params layout");
_Static_assert(offsetof(mixflow_trainer_params, proj_coeff) == 80, "trainer params: proj_coeff appended after ABI 1");
_Static_assert(sizeof(mixflow_dtype) == 4 && sizeof(mixflow_tensor_storage) == 4, "enums are 32-bit");
_Static_assert(offsetof(mixflow_sampler_params, seed) == 24, "sampler params: seed is 8-aligned");
_Static_assert(sizeof(mixflow_sampler_params) == 112, "sampler params layout");
_Static_assert(sizeof(mixflow_model_load_params) == 12, "model load params layout");
_Static_assert(offsetof(mixflow_model_save_params, transport) == 24 && sizeof(mixflow_model_save_params) == 56,
               "model save params layout");
