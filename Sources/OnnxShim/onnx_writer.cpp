// OnnxShim writer: builds a ModelProto of named float32 initializers + metadata and serialises it.
// The caller (MixflowIO's OnnxWriter) has validated names, shapes and sizes and writes the external data
// itself; this file only assembles protobuf fields. No exception leaves an extern "C" function.
#include "onnx_shim.h"
#include "onnx_writer_internal.h"

#include <climits>
#include <cstring>
#include <new>
#include <string>

namespace {

void setError(char *err, size_t cap, const std::string &message) {
    if (err == nullptr || cap == 0) return;
    size_t n = message.size() < cap - 1 ? message.size() : cap - 1;
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
}

onnx::TensorProto *addTensor(mfx_onnx_writer *w, const char *name, size_t name_len, const int64_t *dims, int32_t ndim,
                             int32_t data_type) {
    onnx::TensorProto *t = w->model.mutable_graph()->add_initializer();
    t->set_name(std::string(name, name_len));
    t->set_data_type(data_type);
    for (int32_t i = 0; i < ndim; ++i) t->add_dims(dims[i]);
    return t;
}

}  // namespace

extern "C" {

mfx_onnx_writer *mfx_onnx_writer_create(const char *graph_name) {
    try {
        auto *w = new mfx_onnx_writer();
        // IR 8 / opset 17 is what Debian's libonnx 1.12 checker accepts; pip onnx and onnxruntime read it too.
        w->model.set_ir_version(8);
        w->model.set_producer_name("libmixflow");
        auto *opset = w->model.add_opset_import();
        opset->set_domain("");
        opset->set_version(17);
        w->model.mutable_graph()->set_name(graph_name != nullptr ? graph_name : "mixflow");
        return w;
    } catch (...) {
        return nullptr;
    }
}

void mfx_onnx_writer_free(mfx_onnx_writer *w) { delete w; }

int mfx_onnx_writer_add_metadata(mfx_onnx_writer *w, const char *key, size_t key_len, const char *value, size_t value_len) {
    if (w == nullptr || key == nullptr || (value == nullptr && value_len > 0)) return MFX_ONNX_ERR_ARGUMENT;
    try {
        auto *e = w->model.add_metadata_props();
        e->set_key(std::string(key, key_len));
        e->set_value(value_len > 0 ? std::string(value, value_len) : std::string());
        return MFX_ONNX_OK;
    } catch (const std::bad_alloc &) { return MFX_ONNX_ERR_NOMEM; } catch (...) { return MFX_ONNX_ERR_INTERNAL; }
}

int mfx_onnx_writer_add_raw(mfx_onnx_writer *w, const char *name, size_t name_len, const int64_t *dims, int32_t ndim,
                            int32_t data_type, const void *data, int64_t nbytes) {
    if (w == nullptr || name == nullptr || ndim < 0 || (dims == nullptr && ndim > 0) || nbytes < 0 ||
        (data == nullptr && nbytes > 0) || nbytes > INT_MAX || mfx_onnx_element_size(data_type) == 0)
        return MFX_ONNX_ERR_ARGUMENT;
    try {
        onnx::TensorProto *t = addTensor(w, name, name_len, dims, ndim, data_type);
        t->set_raw_data(std::string(reinterpret_cast<const char *>(data), static_cast<size_t>(nbytes)));
        return MFX_ONNX_OK;
    } catch (const std::bad_alloc &) { return MFX_ONNX_ERR_NOMEM; } catch (...) { return MFX_ONNX_ERR_INTERNAL; }
}

int mfx_onnx_writer_add_external(mfx_onnx_writer *w, const char *name, size_t name_len, const int64_t *dims,
                                 int32_t ndim, int32_t data_type, const char *location, int64_t offset, int64_t length) {
    if (w == nullptr || name == nullptr || location == nullptr || ndim < 0 || (dims == nullptr && ndim > 0) ||
        offset < 0 || length < 0 || mfx_onnx_element_size(data_type) == 0)
        return MFX_ONNX_ERR_ARGUMENT;
    try {
        onnx::TensorProto *t = addTensor(w, name, name_len, dims, ndim, data_type);
        t->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
        const std::pair<const char *, std::string> entries[] = {
            {"location", location}, {"offset", std::to_string(offset)}, {"length", std::to_string(length)}};
        for (const auto &kv : entries) {
            auto *e = t->add_external_data();
            e->set_key(kv.first);
            e->set_value(kv.second);
        }
        return MFX_ONNX_OK;
    } catch (const std::bad_alloc &) { return MFX_ONNX_ERR_NOMEM; } catch (...) { return MFX_ONNX_ERR_INTERNAL; }
}

int mfx_onnx_writer_size(mfx_onnx_writer *w, int64_t *out_size, char *err, size_t cap) {
    if (w == nullptr || out_size == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    try {
        size_t n = w->model.ByteSizeLong();
        if (n > static_cast<size_t>(INT_MAX)) {
            setError(err, cap, "the model would be " + std::to_string(n) +
                               " bytes; a protobuf message must stay under 2 GiB (lower the external-data threshold)");
            return MFX_ONNX_ERR_FORMAT;
        }
        *out_size = static_cast<int64_t>(n);
        return MFX_ONNX_OK;
    } catch (const std::bad_alloc &) { return MFX_ONNX_ERR_NOMEM; } catch (...) { return MFX_ONNX_ERR_INTERNAL; }
}

int mfx_onnx_writer_serialize(mfx_onnx_writer *w, void *buf, int64_t size, char *err, size_t cap) {
    if (w == nullptr || buf == nullptr || size < 0 || size > INT_MAX) return MFX_ONNX_ERR_ARGUMENT;
    try {
        if (static_cast<int64_t>(w->model.ByteSizeLong()) != size) {
            setError(err, cap, "serialised size changed");
            return MFX_ONNX_ERR_INTERNAL;
        }
        if (!w->model.SerializeToArray(buf, static_cast<int>(size))) {
            setError(err, cap, "protobuf serialisation failed");
            return MFX_ONNX_ERR_INTERNAL;
        }
        return MFX_ONNX_OK;
    } catch (const std::bad_alloc &) { return MFX_ONNX_ERR_NOMEM; } catch (...) { return MFX_ONNX_ERR_INTERNAL; }
}

}  // extern "C"
