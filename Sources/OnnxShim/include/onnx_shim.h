/* OnnxShim: a plain-C view of ONNX protobuf messages over Debian's libonnx_proto (C++).
 *
 * Internal to libmixflow: these mfx_onnx_* symbols are hidden by the linker version script (mixflow.map
 * exports only mixflow_*). The shim parses and serialises; it does NOT validate shapes, lengths or
 * external-data locations: that is MixflowIO's OnnxReader, which treats every value read here as hostile.
 * No C++ exception ever leaves a function declared here: each catches everything and returns a code
 * with a message in the caller's buffer.
 */
#ifndef MIXFLOW_ONNX_SHIM_H
#define MIXFLOW_ONNX_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes (0 = success). */
enum {
    MFX_ONNX_OK = 0,
    MFX_ONNX_ERR_IO = 1,          /* open/read/stat failed */
    MFX_ONNX_ERR_FORMAT = 2,      /* not a parseable message, trailing garbage, over the size limit */
    MFX_ONNX_ERR_NOMEM = 3,
    MFX_ONNX_ERR_ARGUMENT = 4,    /* our own misuse: index out of range, NULL */
    MFX_ONNX_ERR_UNSUPPORTED = 5, /* a data type the converter does not handle */
    MFX_ONNX_ERR_INTERNAL = 6     /* an unexpected C++ exception */
};

/* What the bytes of a file are. */
enum {
    MFX_ONNX_KIND_MODEL = 0,      /* ModelProto (.onnx) */
    MFX_ONNX_KIND_TENSOR = 1      /* a single serialised TensorProto (.pb test data); seen as one initializer */
};

/* Where an initializer's values live. */
enum {
    MFX_ONNX_STORAGE_EMPTY = 0,   /* neither raw_data, a typed field nor external data */
    MFX_ONNX_STORAGE_RAW = 1,     /* raw_data, little-endian */
    MFX_ONNX_STORAGE_TYPED = 2,   /* one of the typed repeated fields, see typed_field */
    MFX_ONNX_STORAGE_EXTERNAL = 3 /* data_location == EXTERNAL; read external_data entries */
};

/* Which typed repeated field holds the values (ONNX stores small types widened). */
enum {
    MFX_ONNX_FIELD_NONE = 0, MFX_ONNX_FIELD_FLOAT = 1, MFX_ONNX_FIELD_INT32 = 2, MFX_ONNX_FIELD_INT64 = 3,
    MFX_ONNX_FIELD_DOUBLE = 4, MFX_ONNX_FIELD_UINT64 = 5, MFX_ONNX_FIELD_STRING = 6
};

typedef struct mfx_onnx_model mfx_onnx_model;

/* One initializer as stored; every pointer is owned by the model and valid until mfx_onnx_close. */
typedef struct mfx_onnx_tensor {
    const char *name; size_t name_len;
    int32_t data_type;              /* TensorProto.DataType, unchecked */
    int32_t storage;                /* MFX_ONNX_STORAGE_* */
    int32_t ndim; const int64_t *dims;   /* dims as stored: may be negative or overflow */
    int64_t raw_bytes;              /* raw_data size (STORAGE_RAW) */
    int32_t typed_field;            /* MFX_ONNX_FIELD_* (STORAGE_TYPED) */
    int64_t typed_count;            /* number of elements in that field */
    int32_t num_fields_set;         /* how many of raw_data and the typed fields are non-empty: > 1 is ambiguous */
    int32_t has_raw_data_field;     /* raw_data present (even empty): contradicts EXTERNAL */
    int32_t has_segment;            /* segmented tensors are not supported */
    int32_t num_external;           /* external_data key/value entries */
} mfx_onnx_tensor;

/* Parses `path` as `kind`, reading at most `max_bytes` (the file size is also a limit; protobuf itself caps a
 * message at INT_MAX). Trailing bytes after a complete message are an error. *out is NULL on failure. */
int mfx_onnx_open(const char *path, int32_t kind, int64_t max_bytes, mfx_onnx_model **out, char *err, size_t err_cap);
/* The same over a caller's buffer (fuzzing, in-memory tests); the buffer is not kept. */
int mfx_onnx_open_buffer(const void *data, size_t size, int32_t kind, mfx_onnx_model **out, char *err, size_t err_cap);
void mfx_onnx_close(mfx_onnx_model *m);

int64_t mfx_onnx_num_tensors(const mfx_onnx_model *m);
int mfx_onnx_tensor_at(const mfx_onnx_model *m, int64_t index, mfx_onnx_tensor *out);
/* external_data entry `entry` of tensor `index` (key and value are byte strings, not NUL-safe: use the lengths). */
int mfx_onnx_external_entry(const mfx_onnx_model *m, int64_t index, int32_t entry,
                            const char **key, size_t *key_len, const char **value, size_t *value_len);
int64_t mfx_onnx_num_metadata(const mfx_onnx_model *m);
int mfx_onnx_metadata_at(const mfx_onnx_model *m, int64_t index,
                         const char **key, size_t *key_len, const char **value, size_t *value_len);
/* Node count and op types, for callers that want to know whether a file holds a graph. */
int64_t mfx_onnx_num_nodes(const mfx_onnx_model *m);
/* Node `index`: its op type (a byte string owned by the model) and how many inputs and outputs it names. */
int mfx_onnx_node_at(const mfx_onnx_model *m, int64_t index, const char **op_type, size_t *op_type_len,
                     int32_t *n_inputs, int32_t *n_outputs);
/* Input (is_output 0) or output (1) `k` of node `index`: a value name, owned by the model ("" = omitted). */
int mfx_onnx_node_value(const mfx_onnx_model *m, int64_t index, int32_t is_output, int32_t k, const char **name,
                        size_t *name_len);

/* Copies tensor `index`'s inline values (RAW or TYPED) into dst as float32. `count` must equal the number of
 * values stored (the caller validated it against dims). */
int mfx_onnx_copy_inline_f32(const mfx_onnx_model *m, int64_t index, float *dst, int64_t count, char *err, size_t err_cap);

/* Copies tensor `index`'s inline values (RAW or TYPED) into dst as stored: `nbytes` = count * element size
 * little-endian bytes of its own data type (typed fields narrowed back to that type). */
int mfx_onnx_copy_inline_raw(const mfx_onnx_model *m, int64_t index, void *dst, int64_t nbytes, char *err, size_t err_cap);

/* Bytes per element of a data type in raw_data/external data; 0 for types we cannot convert to float32. */
int32_t mfx_onnx_element_size(int32_t data_type);
/* The typed field onnx.proto assigns to a data type (MFX_ONNX_FIELD_NONE for types we cannot convert). */
int32_t mfx_onnx_expected_field(int32_t data_type);
/* Converts `count` little-endian elements of `data_type` held at the START of `buf` to float32 in place
 * (buf holds count * 4 bytes). Works only for element sizes <= 4: it walks backwards so a wider output
 * never overwrites unread input. */
int mfx_onnx_convert_inplace_f32(int32_t data_type, void *buf, int64_t count);
/* Converts `count` little-endian elements of `data_type` from src to float32 dst (any element size; no aliasing). */
int mfx_onnx_convert_f32(int32_t data_type, const void *src, int64_t count, float *dst);

/* ---- writer: a ModelProto (IR 8, opset 17, empty graph) holding named tensors + metadata ---- */
typedef struct mfx_onnx_writer mfx_onnx_writer;
mfx_onnx_writer *mfx_onnx_writer_create(const char *graph_name);
void mfx_onnx_writer_free(mfx_onnx_writer *w);
int mfx_onnx_writer_add_metadata(mfx_onnx_writer *w, const char *key, size_t key_len, const char *value, size_t value_len);
/* A tensor of `data_type` (one mfx_onnx_element_size knows) stored inline as raw_data: `nbytes` little-endian
 * bytes (host order here). */
int mfx_onnx_writer_add_raw(mfx_onnx_writer *w, const char *name, size_t name_len, const int64_t *dims, int32_t ndim,
                            int32_t data_type, const void *data, int64_t nbytes);
/* A tensor of `data_type` whose bytes the caller has put in `location` (relative) at offset/length. */
int mfx_onnx_writer_add_external(mfx_onnx_writer *w, const char *name, size_t name_len, const int64_t *dims,
                                 int32_t ndim, int32_t data_type, const char *location, int64_t offset, int64_t length);
/* Serialised size, then serialisation into the caller's buffer of exactly that size. */
int mfx_onnx_writer_size(mfx_onnx_writer *w, int64_t *out_size, char *err, size_t err_cap);
int mfx_onnx_writer_serialize(mfx_onnx_writer *w, void *buf, int64_t size, char *err, size_t err_cap);

/* ---- writer, graph part: nodes, graph inputs and outputs (a runnable model; opset 17) ---- */
/* A node `op_type` (default domain) reading `inputs` and writing `outputs` (NUL-terminated names; "" marks an
 * omitted optional input). Attribute calls below apply to the node added last. */
int mfx_onnx_writer_add_node(mfx_onnx_writer *w, const char *op_type, const char *const *inputs, int32_t n_inputs,
                             const char *const *outputs, int32_t n_outputs);
int mfx_onnx_writer_attr_int(mfx_onnx_writer *w, const char *name, int64_t value);
int mfx_onnx_writer_attr_ints(mfx_onnx_writer *w, const char *name, const int64_t *values, int32_t count);
int mfx_onnx_writer_attr_float(mfx_onnx_writer *w, const char *name, float value);
/* A Constant node writing `output`: a FLOAT (data: float) or INT64 (data: int64_t) tensor of `count` values. */
int mfx_onnx_writer_add_constant(mfx_onnx_writer *w, const char *output, int32_t data_type, const int64_t *dims,
                                 int32_t ndim, const void *data, int64_t count);
/* A graph input (is_output 0) or output (1) of element type `data_type`; a dim < 0 becomes the symbolic
 * dimension "batch". */
int mfx_onnx_writer_add_value(mfx_onnx_writer *w, int32_t is_output, const char *name, int32_t data_type,
                              const int64_t *dims, int32_t ndim);

#ifdef __cplusplus
}
#endif
#endif /* MIXFLOW_ONNX_SHIM_H */
