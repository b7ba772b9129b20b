// OnnxShim writer, graph part: nodes with attributes, Constant nodes and typed graph inputs/outputs, so an
// exported model runs in onnxruntime. The caller (MixflowIO's OnnxGraphBuilder) chooses ops and names and
// guarantees the graph is well formed; this file only assembles protobuf fields. No exception leaves an
// extern "C" function.
#include "onnx_shim.h"
#include "onnx_writer_internal.h"

#include <climits>
#include <cstring>
#include <new>
#include <string>

namespace {

template <typename F>
int guardedWrite(F body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return MFX_ONNX_ERR_NOMEM;
    } catch (...) {
        return MFX_ONNX_ERR_INTERNAL;
    }
}

onnx::AttributeProto *addAttribute(mfx_onnx_writer *w, const char *name, onnx::AttributeProto_AttributeType type) {
    onnx::AttributeProto *a = w->last_node->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
}

}  // namespace

extern "C" {

int mfx_onnx_writer_add_node(mfx_onnx_writer *w, const char *op_type, const char *const *inputs, int32_t n_inputs,
                             const char *const *outputs, int32_t n_outputs) {
    if (w == nullptr || op_type == nullptr || n_inputs < 0 || n_outputs < 1 || (inputs == nullptr && n_inputs > 0) ||
        outputs == nullptr)
        return MFX_ONNX_ERR_ARGUMENT;
    for (int32_t i = 0; i < n_inputs; ++i) if (inputs[i] == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    for (int32_t i = 0; i < n_outputs; ++i) if (outputs[i] == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    return guardedWrite([&] {
        onnx::GraphProto *g = w->model.mutable_graph();
        onnx::NodeProto *n = g->add_node();
        n->set_op_type(op_type);
        // Node names only help people reading the graph (Netron, error messages of runtimes).
        n->set_name(std::string(op_type) + "_" + std::to_string(g->node_size() - 1));
        for (int32_t i = 0; i < n_inputs; ++i) n->add_input(inputs[i]);
        for (int32_t i = 0; i < n_outputs; ++i) n->add_output(outputs[i]);
        w->last_node = n;
        return MFX_ONNX_OK;
    });
}

int mfx_onnx_writer_attr_int(mfx_onnx_writer *w, const char *name, int64_t value) {
    if (w == nullptr || w->last_node == nullptr || name == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    return guardedWrite([&] {
        addAttribute(w, name, onnx::AttributeProto_AttributeType_INT)->set_i(value);
        return MFX_ONNX_OK;
    });
}

int mfx_onnx_writer_attr_ints(mfx_onnx_writer *w, const char *name, const int64_t *values, int32_t count) {
    if (w == nullptr || w->last_node == nullptr || name == nullptr || count < 0 || (values == nullptr && count > 0))
        return MFX_ONNX_ERR_ARGUMENT;
    return guardedWrite([&] {
        onnx::AttributeProto *a = addAttribute(w, name, onnx::AttributeProto_AttributeType_INTS);
        for (int32_t i = 0; i < count; ++i) a->add_ints(values[i]);
        return MFX_ONNX_OK;
    });
}

int mfx_onnx_writer_attr_float(mfx_onnx_writer *w, const char *name, float value) {
    if (w == nullptr || w->last_node == nullptr || name == nullptr) return MFX_ONNX_ERR_ARGUMENT;
    return guardedWrite([&] {
        addAttribute(w, name, onnx::AttributeProto_AttributeType_FLOAT)->set_f(value);
        return MFX_ONNX_OK;
    });
}

int mfx_onnx_writer_add_constant(mfx_onnx_writer *w, const char *output, int32_t data_type, const int64_t *dims,
                                 int32_t ndim, const void *data, int64_t count) {
    if (w == nullptr || output == nullptr || ndim < 0 || (dims == nullptr && ndim > 0) || count < 0 ||
        (data == nullptr && count > 0) || count > INT_MAX / 8 ||
        (data_type != onnx::TensorProto_DataType_FLOAT && data_type != onnx::TensorProto_DataType_INT64))
        return MFX_ONNX_ERR_ARGUMENT;
    const char *no_inputs[1] = {nullptr};
    const char *outputs[1] = {output};
    int rc = mfx_onnx_writer_add_node(w, "Constant", no_inputs, 0, outputs, 1);
    if (rc != MFX_ONNX_OK) return rc;
    return guardedWrite([&] {
        onnx::AttributeProto *a = addAttribute(w, "value", onnx::AttributeProto_AttributeType_TENSOR);
        onnx::TensorProto *t = a->mutable_t();
        t->set_data_type(data_type);
        for (int32_t i = 0; i < ndim; ++i) t->add_dims(dims[i]);
        size_t size = data_type == onnx::TensorProto_DataType_FLOAT ? 4 : 8;
        t->set_raw_data(std::string(static_cast<const char *>(data), static_cast<size_t>(count) * size));
        return MFX_ONNX_OK;
    });
}

int mfx_onnx_writer_add_value(mfx_onnx_writer *w, int32_t is_output, const char *name, int32_t data_type,
                              const int64_t *dims, int32_t ndim) {
    if (w == nullptr || name == nullptr || ndim < 0 || (dims == nullptr && ndim > 0)) return MFX_ONNX_ERR_ARGUMENT;
    return guardedWrite([&] {
        onnx::GraphProto *g = w->model.mutable_graph();
        onnx::ValueInfoProto *v = is_output ? g->add_output() : g->add_input();
        v->set_name(name);
        onnx::TypeProto_Tensor *tt = v->mutable_type()->mutable_tensor_type();
        tt->set_elem_type(data_type);
        onnx::TensorShapeProto *shape = tt->mutable_shape();
        for (int32_t i = 0; i < ndim; ++i) {
            onnx::TensorShapeProto_Dimension *d = shape->add_dim();
            if (dims[i] < 0) d->set_dim_param("batch"); else d->set_dim_value(dims[i]);
        }
        return MFX_ONNX_OK;
    });
}

}  // extern "C"
