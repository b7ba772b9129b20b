// OnnxShim: parse and serialise ONNX protobuf messages with Debian's libonnx_proto, behind a plain-C API.
// Every entry point catches all C++ exceptions (std::bad_alloc from a hostile size included): an exception
// crossing into Swift would abort the host process.
#include "onnx_shim.h"

#include <onnx/onnx_pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

struct mfx_onnx_model {
    onnx::ModelProto model;
};


namespace {

// protobuf reports parse problems through its logger, which prints to stderr by default; the library never
// prints, so the messages are kept per thread and folded into our error text instead.
thread_local std::string lastProtobufLog;

void captureLog(google::protobuf::LogLevel, const char *, int, const std::string &message) {
    lastProtobufLog = message;
}

void installLogHandler() {
    static std::once_flag once;
    std::call_once(once, [] { google::protobuf::SetLogHandler(&captureLog); });
}

void setError(char *err, size_t cap, const std::string &message) {
    if (err == nullptr || cap == 0) return;
    size_t n = message.size() < cap - 1 ? message.size() : cap - 1;
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
}

// Runs `body`, turning every escaping exception into a return code.
template <class F> int guarded(char *err, size_t cap, F &&body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        setError(err, cap, "out of memory");
        return MFX_ONNX_ERR_NOMEM;
    } catch (const std::exception &e) {
        setError(err, cap, std::string("internal error: ") + e.what());
        return MFX_ONNX_ERR_INTERNAL;
    } catch (...) {
        setError(err, cap, "internal error: unknown exception");
        return MFX_ONNX_ERR_INTERNAL;
    }
}

std::string parseFailure(const char *what, int position) {
    std::string m = std::string("not a valid ") + what + " (protobuf parse failed near byte " + std::to_string(position);
    if (!lastProtobufLog.empty()) m += ": " + lastProtobufLog;
    return m + ")";
}

// Parses one message of `kind` from `cis` into `m`; a TensorProto becomes the single initializer.
int parseInto(google::protobuf::io::CodedInputStream &cis, int32_t kind, mfx_onnx_model *m, char *err, size_t cap) {
    lastProtobufLog.clear();
    bool ok;
    const char *what = kind == MFX_ONNX_KIND_TENSOR ? "ONNX TensorProto" : "ONNX ModelProto";
    if (kind == MFX_ONNX_KIND_TENSOR) {
        onnx::TensorProto t;
        ok = t.ParseFromCodedStream(&cis) && cis.ConsumedEntireMessage();
        if (ok) m->model.mutable_graph()->add_initializer()->Swap(&t);
    } else if (kind == MFX_ONNX_KIND_MODEL) {
        ok = m->model.ParseFromCodedStream(&cis) && cis.ConsumedEntireMessage();
    } else {
        setError(err, cap, "unknown message kind");
        return MFX_ONNX_ERR_ARGUMENT;
    }
    if (!ok) { setError(err, cap, parseFailure(what, cis.CurrentPosition())); return MFX_ONNX_ERR_FORMAT; }
    return MFX_ONNX_OK;
}

const onnx::TensorProto *tensorAt(const mfx_onnx_model *m, int64_t index) {
    if (m == nullptr || !m->model.has_graph()) return nullptr;
    const auto &g = m->model.graph();
    if (index < 0 || index >= g.initializer_size()) return nullptr;
    return &g.initializer(static_cast<int>(index));
}

// ---- element conversion to float32 ----
float halfToFloat(uint16_t h) {
    // Exact IEEE binary16 -> binary32, bit by bit (NaN payloads shifted as numpy does).
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal half: normalise
        int e = -1;
        do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
        bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f; std::memcpy(&f, &bits, 4); return f;
}

float bf16ToFloat(uint16_t h) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f; std::memcpy(&f, &bits, 4); return f;
}

template <class T> T loadLE(const unsigned char *p) {
    T v; std::memcpy(&v, p, sizeof(T)); return v;  // x86-64/aarch64 hosts are little-endian, as is ONNX
}

float convertOne(int32_t type, const unsigned char *p) {
    switch (type) {
    case onnx::TensorProto_DataType_FLOAT: return loadLE<float>(p);
    case onnx::TensorProto_DataType_UINT8: return static_cast<float>(p[0]);
    case onnx::TensorProto_DataType_INT8: return static_cast<float>(static_cast<int8_t>(p[0]));
    case onnx::TensorProto_DataType_BOOL: return p[0] != 0 ? 1.0f : 0.0f;
    case onnx::TensorProto_DataType_UINT16: return static_cast<float>(loadLE<uint16_t>(p));
    case onnx::TensorProto_DataType_INT16: return static_cast<float>(loadLE<int16_t>(p));
    case onnx::TensorProto_DataType_FLOAT16: return halfToFloat(loadLE<uint16_t>(p));
    case onnx::TensorProto_DataType_BFLOAT16: return bf16ToFloat(loadLE<uint16_t>(p));
    case onnx::TensorProto_DataType_INT32: return static_cast<float>(loadLE<int32_t>(p));
    case onnx::TensorProto_DataType_UINT32: return static_cast<float>(loadLE<uint32_t>(p));
    case onnx::TensorProto_DataType_INT64: return static_cast<float>(loadLE<int64_t>(p));
    case onnx::TensorProto_DataType_UINT64: return static_cast<float>(loadLE<uint64_t>(p));
    case onnx::TensorProto_DataType_DOUBLE: return static_cast<float>(loadLE<double>(p));
    default: return 0.0f;
    }
}

// A typed-field value (already widened by ONNX) to float32, interpreted by the tensor's data_type.
float fromInt32Field(int32_t type, int32_t v) {
    switch (type) {
    case onnx::TensorProto_DataType_FLOAT16: return halfToFloat(static_cast<uint16_t>(v));
    case onnx::TensorProto_DataType_BFLOAT16: return bf16ToFloat(static_cast<uint16_t>(v));
    case onnx::TensorProto_DataType_BOOL: return v != 0 ? 1.0f : 0.0f;
    case onnx::TensorProto_DataType_UINT8: return static_cast<float>(static_cast<uint8_t>(v));
    case onnx::TensorProto_DataType_INT8: return static_cast<float>(static_cast<int8_t>(v));
    case onnx::TensorProto_DataType_UINT16: return static_cast<float>(static_cast<uint16_t>(v));
    case onnx::TensorProto_DataType_INT16: return static_cast<float>(static_cast<int16_t>(v));
    default: return static_cast<float>(v);
    }
}

// The one walk over a tensor's inline values, raw_data or the typed field its data type uses: checks that they are
// exactly `count` values of the tensor's type, then hands raw_data to `raw(bytes)` or each typed value to
// `typed(i, field, k)` (value i is element k of `field`).
template <class Raw, class Typed>
int copyInline(const onnx::TensorProto *t, int64_t count, char *err, size_t cap, Raw &&raw, Typed &&typed) {
    int32_t type = t->data_type();
    if (!t->raw_data().empty()) {
        const std::string &bytes = t->raw_data();
        if (static_cast<uint64_t>(bytes.size()) != static_cast<uint64_t>(count) * mfx_onnx_element_size(type)) {
            setError(err, cap, "raw_data has " + std::to_string(bytes.size()) + " bytes for " + std::to_string(count) + " values");
            return MFX_ONNX_ERR_FORMAT;
        }
        return raw(bytes.data());
    }
    int32_t field = mfx_onnx_expected_field(type);
    int64_t n = field == MFX_ONNX_FIELD_FLOAT ? t->float_data_size() : field == MFX_ONNX_FIELD_INT32 ? t->int32_data_size()
              : field == MFX_ONNX_FIELD_INT64 ? t->int64_data_size() : field == MFX_ONNX_FIELD_DOUBLE ? t->double_data_size()
              : field == MFX_ONNX_FIELD_UINT64 ? t->uint64_data_size() : -1;
    if (n != count) {
        setError(err, cap, "the typed field for data type " + std::to_string(type) + " has " + std::to_string(n) +
                           " values, expected " + std::to_string(count));
        return MFX_ONNX_ERR_FORMAT;
    }
    for (int64_t i = 0; i < count; ++i) typed(i, field, static_cast<int>(i));
    return MFX_ONNX_OK;
}

}  // namespace

// The typed field a data type must use (onnx.proto's comments on each field).
extern "C" int32_t mfx_onnx_expected_field(int32_t type) {
    switch (type) {
    case onnx::TensorProto_DataType_FLOAT: return MFX_ONNX_FIELD_FLOAT;
    case onnx::TensorProto_DataType_DOUBLE: return MFX_ONNX_FIELD_DOUBLE;
    case onnx::TensorProto_DataType_INT64: return MFX_ONNX_FIELD_INT64;
    case onnx::TensorProto_DataType_UINT32: case onnx::TensorProto_DataType_UINT64: return MFX_ONNX_FIELD_UINT64;
    case onnx::TensorProto_DataType_INT32: case onnx::TensorProto_DataType_INT16: case onnx::TensorProto_DataType_INT8:
    case onnx::TensorProto_DataType_UINT16: case onnx::TensorProto_DataType_UINT8: case onnx::TensorProto_DataType_BOOL:
    case onnx::TensorProto_DataType_FLOAT16: case onnx::TensorProto_DataType_BFLOAT16: return MFX_ONNX_FIELD_INT32;
    default: return MFX_ONNX_FIELD_NONE;
    }
}

extern "C" {

int mfx_onnx_open(const char *path, int32_t kind, int64_t max_bytes, mfx_onnx_model **out, char *err, size_t cap) {
    if (out == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    *out = nullptr;
    installLogHandler();
    return guarded(err, cap, [&]() -> int {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; it has no effect
        // on regular files, and anything else is refused below.
        int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) { setError(err, cap, std::string("cannot open: ") + std::strerror(errno)); return MFX_ONNX_ERR_IO; }
        struct FdCloser { int fd; ~FdCloser() { ::close(fd); } } closer{fd};
        struct stat st;
        if (::fstat(fd, &st) != 0) { setError(err, cap, std::string("cannot stat: ") + std::strerror(errno)); return MFX_ONNX_ERR_IO; }
        if (!S_ISREG(st.st_mode)) { setError(err, cap, "not a regular file"); return MFX_ONNX_ERR_IO; }
        if (st.st_size == 0) { setError(err, cap, "the file is empty"); return MFX_ONNX_ERR_FORMAT; }
        int64_t limit = max_bytes < INT_MAX ? max_bytes : INT_MAX;
        if (st.st_size > limit) {
            setError(err, cap, "the file is " + std::to_string(st.st_size) + " bytes; a protobuf message is limited to " +
                               std::to_string(limit) + " bytes (store large tensors as external data)");
            return MFX_ONNX_ERR_FORMAT;
        }
        google::protobuf::io::FileInputStream fis(fd);
        google::protobuf::io::CodedInputStream cis(&fis);
        // The file size bounds every length protobuf may trust, so a hostile length cannot make it allocate more.
        cis.SetTotalBytesLimit(static_cast<int>(st.st_size));
        std::unique_ptr<mfx_onnx_model> m(new mfx_onnx_model());
        int rc = parseInto(cis, kind, m.get(), err, cap);
        if (rc == MFX_ONNX_OK && fis.GetErrno() != 0) {
            setError(err, cap, std::string("read failed: ") + std::strerror(fis.GetErrno()));
            return MFX_ONNX_ERR_IO;
        }
        if (rc == MFX_ONNX_OK) *out = m.release();
        return rc;
    });
}

int mfx_onnx_open_buffer(const void *data, size_t size, int32_t kind, mfx_onnx_model **out, char *err, size_t cap) {
    if (out == nullptr || (data == nullptr && size > 0)) return MFX_ONNX_ERR_ARGUMENT;
    *out = nullptr;
    installLogHandler();
    return guarded(err, cap, [&]() -> int {
        if (size == 0) { setError(err, cap, "the input is empty"); return MFX_ONNX_ERR_FORMAT; }
        if (size > static_cast<size_t>(INT_MAX)) { setError(err, cap, "input over 2 GiB"); return MFX_ONNX_ERR_FORMAT; }
        google::protobuf::io::ArrayInputStream ais(data, static_cast<int>(size));
        google::protobuf::io::CodedInputStream cis(&ais);
        cis.SetTotalBytesLimit(static_cast<int>(size));
        std::unique_ptr<mfx_onnx_model> m(new mfx_onnx_model());
        int rc = parseInto(cis, kind, m.get(), err, cap);
        if (rc == MFX_ONNX_OK) *out = m.release();
        return rc;
    });
}

void mfx_onnx_close(mfx_onnx_model *m) { delete m; }

int64_t mfx_onnx_num_tensors(const mfx_onnx_model *m) {
    return (m != nullptr && m->model.has_graph()) ? m->model.graph().initializer_size() : 0;
}

int mfx_onnx_tensor_at(const mfx_onnx_model *m, int64_t index, mfx_onnx_tensor *out) {
    const onnx::TensorProto *t = tensorAt(m, index);
    if (t == nullptr || out == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    *out = mfx_onnx_tensor{};
    out->name = t->name().data();
    out->name_len = t->name().size();
    out->data_type = t->data_type();
    out->ndim = t->dims_size();
    out->dims = t->dims().data();
    out->has_segment = t->has_segment() ? 1 : 0;
    out->has_raw_data_field = t->has_raw_data() ? 1 : 0;
    out->num_external = t->external_data_size();
    struct Field { int32_t id; int64_t count; } fields[] = {
        {MFX_ONNX_FIELD_FLOAT, t->float_data_size()}, {MFX_ONNX_FIELD_INT32, t->int32_data_size()},
        {MFX_ONNX_FIELD_INT64, t->int64_data_size()}, {MFX_ONNX_FIELD_DOUBLE, t->double_data_size()},
        {MFX_ONNX_FIELD_UINT64, t->uint64_data_size()}, {MFX_ONNX_FIELD_STRING, t->string_data_size()},
    };
    int32_t set = t->raw_data().empty() ? 0 : 1;
    for (const Field &f : fields) {
        if (f.count > 0) { ++set; out->typed_field = f.id; out->typed_count = f.count; }
    }
    out->num_fields_set = set;
    if (t->data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
        out->storage = MFX_ONNX_STORAGE_EXTERNAL;
    } else if (!t->raw_data().empty()) {
        out->storage = MFX_ONNX_STORAGE_RAW;
        out->raw_bytes = static_cast<int64_t>(t->raw_data().size());
    } else if (out->typed_field != MFX_ONNX_FIELD_NONE) {
        out->storage = MFX_ONNX_STORAGE_TYPED;
    } else {
        out->storage = MFX_ONNX_STORAGE_EMPTY;
    }
    if (out->storage != MFX_ONNX_STORAGE_TYPED) { out->typed_field = MFX_ONNX_FIELD_NONE; out->typed_count = 0; }
    return MFX_ONNX_OK;
}

int mfx_onnx_external_entry(const mfx_onnx_model *m, int64_t index, int32_t entry,
                            const char **key, size_t *key_len, const char **value, size_t *value_len) {
    const onnx::TensorProto *t = tensorAt(m, index);
    if (t == nullptr || entry < 0 || entry >= t->external_data_size()) return MFX_ONNX_ERR_ARGUMENT;
    const auto &e = t->external_data(entry);
    *key = e.key().data(); *key_len = e.key().size();
    *value = e.value().data(); *value_len = e.value().size();
    return MFX_ONNX_OK;
}

int64_t mfx_onnx_num_metadata(const mfx_onnx_model *m) { return m != nullptr ? m->model.metadata_props_size() : 0; }

int mfx_onnx_metadata_at(const mfx_onnx_model *m, int64_t index,
                         const char **key, size_t *key_len, const char **value, size_t *value_len) {
    if (m == nullptr || index < 0 || index >= m->model.metadata_props_size()) return MFX_ONNX_ERR_ARGUMENT;
    const auto &e = m->model.metadata_props(static_cast<int>(index));
    *key = e.key().data(); *key_len = e.key().size();
    *value = e.value().data(); *value_len = e.value().size();
    return MFX_ONNX_OK;
}

int64_t mfx_onnx_num_nodes(const mfx_onnx_model *m) {
    return (m != nullptr && m->model.has_graph()) ? m->model.graph().node_size() : 0;
}

int mfx_onnx_node_at(const mfx_onnx_model *m, int64_t index, const char **op_type, size_t *op_type_len,
                     int32_t *n_inputs, int32_t *n_outputs) {
    if (m == nullptr || index < 0 || index >= mfx_onnx_num_nodes(m) || op_type == nullptr || op_type_len == nullptr ||
        n_inputs == nullptr || n_outputs == nullptr)
        return MFX_ONNX_ERR_ARGUMENT;
    const onnx::NodeProto &n = m->model.graph().node(static_cast<int>(index));
    *op_type = n.op_type().data(); *op_type_len = n.op_type().size();
    *n_inputs = n.input_size(); *n_outputs = n.output_size();
    return MFX_ONNX_OK;
}

int mfx_onnx_node_value(const mfx_onnx_model *m, int64_t index, int32_t is_output, int32_t k, const char **name,
                        size_t *name_len) {
    if (m == nullptr || index < 0 || index >= mfx_onnx_num_nodes(m) || name == nullptr || name_len == nullptr)
        return MFX_ONNX_ERR_ARGUMENT;
    const onnx::NodeProto &n = m->model.graph().node(static_cast<int>(index));
    if (k < 0 || k >= (is_output ? n.output_size() : n.input_size())) return MFX_ONNX_ERR_ARGUMENT;
    const std::string &v = is_output ? n.output(k) : n.input(k);
    *name = v.data(); *name_len = v.size();
    return MFX_ONNX_OK;
}

int32_t mfx_onnx_element_size(int32_t type) {
    switch (type) {
    case onnx::TensorProto_DataType_UINT8: case onnx::TensorProto_DataType_INT8: case onnx::TensorProto_DataType_BOOL: return 1;
    case onnx::TensorProto_DataType_UINT16: case onnx::TensorProto_DataType_INT16:
    case onnx::TensorProto_DataType_FLOAT16: case onnx::TensorProto_DataType_BFLOAT16: return 2;
    case onnx::TensorProto_DataType_FLOAT: case onnx::TensorProto_DataType_INT32: case onnx::TensorProto_DataType_UINT32: return 4;
    case onnx::TensorProto_DataType_INT64: case onnx::TensorProto_DataType_UINT64: case onnx::TensorProto_DataType_DOUBLE: return 8;
    default: return 0;
    }
}

int mfx_onnx_convert_inplace_f32(int32_t type, void *buf, int64_t count) {
    int32_t size = mfx_onnx_element_size(type);
    if (size == 0) return MFX_ONNX_ERR_UNSUPPORTED;
    if (size > 4 || count < 0 || (buf == nullptr && count > 0)) return MFX_ONNX_ERR_ARGUMENT;
    if (type == onnx::TensorProto_DataType_FLOAT) return MFX_ONNX_OK;
    unsigned char *bytes = static_cast<unsigned char *>(buf);
    float *dst = static_cast<float *>(buf);
    for (int64_t i = count - 1; i >= 0; --i) dst[i] = convertOne(type, bytes + i * size);  // read before write
    return MFX_ONNX_OK;
}

int mfx_onnx_convert_f32(int32_t type, const void *src, int64_t count, float *dst) {
    int32_t size = mfx_onnx_element_size(type);
    if (size == 0) return MFX_ONNX_ERR_UNSUPPORTED;
    if (count < 0 || ((src == nullptr || dst == nullptr) && count > 0)) return MFX_ONNX_ERR_ARGUMENT;
    const unsigned char *bytes = static_cast<const unsigned char *>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = convertOne(type, bytes + i * size);
    return MFX_ONNX_OK;
}

int mfx_onnx_copy_inline_f32(const mfx_onnx_model *m, int64_t index, float *dst, int64_t count, char *err, size_t cap) {
    const onnx::TensorProto *t = tensorAt(m, index);
    if (t == nullptr || count < 0 || (dst == nullptr && count > 0)) return MFX_ONNX_ERR_ARGUMENT;
    return guarded(err, cap, [&]() -> int {
        int32_t type = t->data_type();
        if (mfx_onnx_element_size(type) == 0) {
            setError(err, cap, "data type " + std::to_string(type) + " cannot be converted to float32");
            return MFX_ONNX_ERR_UNSUPPORTED;
        }
        return copyInline(t, count, err, cap, [&](const void *raw) { return mfx_onnx_convert_f32(type, raw, count, dst); },
                          [&](int64_t i, int32_t field, int k) {
            switch (field) {
            case MFX_ONNX_FIELD_FLOAT: dst[i] = t->float_data(k); break;
            case MFX_ONNX_FIELD_INT32: dst[i] = fromInt32Field(type, t->int32_data(k)); break;
            case MFX_ONNX_FIELD_INT64: dst[i] = static_cast<float>(t->int64_data(k)); break;
            case MFX_ONNX_FIELD_DOUBLE: dst[i] = static_cast<float>(t->double_data(k)); break;
            default: dst[i] = static_cast<float>(t->uint64_data(k)); break;
            }
        });
    });
}

int mfx_onnx_copy_inline_raw(const mfx_onnx_model *m, int64_t index, void *dst, int64_t nbytes, char *err, size_t cap) {
    const onnx::TensorProto *t = tensorAt(m, index);
    if (t == nullptr || nbytes < 0 || (dst == nullptr && nbytes > 0)) return MFX_ONNX_ERR_ARGUMENT;
    return guarded(err, cap, [&]() -> int {
        int32_t type = t->data_type();
        int32_t size = mfx_onnx_element_size(type);
        if (size == 0) {
            setError(err, cap, "data type " + std::to_string(type) + " is not supported");
            return MFX_ONNX_ERR_UNSUPPORTED;
        }
        if (nbytes % size != 0) return MFX_ONNX_ERR_ARGUMENT;
        unsigned char *out = static_cast<unsigned char *>(dst);
        return copyInline(t, nbytes / size, err, cap, [&](const void *raw) { std::memcpy(out, raw, nbytes); return MFX_ONNX_OK; },
                          [&](int64_t i, int32_t field, int k) {
            uint64_t bits = 0;
            switch (field) {
            case MFX_ONNX_FIELD_FLOAT: { float v = t->float_data(k); std::memcpy(&bits, &v, 4); break; }
            case MFX_ONNX_FIELD_DOUBLE: { double v = t->double_data(k); std::memcpy(&bits, &v, 8); break; }
            case MFX_ONNX_FIELD_INT32: bits = static_cast<uint64_t>(static_cast<uint32_t>(t->int32_data(k))); break;
            case MFX_ONNX_FIELD_INT64: bits = static_cast<uint64_t>(t->int64_data(k)); break;
            default: bits = t->uint64_data(k); break;
            }
            for (int32_t b = 0; b < size; ++b) out[i * size + b] = static_cast<unsigned char>(bits >> (8 * b));  // little-endian
        });
    });
}

}  // extern "C"
