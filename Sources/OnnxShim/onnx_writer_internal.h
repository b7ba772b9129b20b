// Shared by the writer's translation units (tensors in onnx_writer.cpp, graph nodes in onnx_graph_writer.cpp).
// Not part of the shim's C API: C++ only, never included from Swift.
#ifndef MIXFLOW_ONNX_WRITER_INTERNAL_H
#define MIXFLOW_ONNX_WRITER_INTERNAL_H

#include <onnx/onnx_pb.h>

struct mfx_onnx_writer {
    onnx::ModelProto model;
    // The node that attribute calls apply to (the last one added); null before the first node.
    onnx::NodeProto *last_node = nullptr;
};

#endif
