// A picture of the graph behind a tensor, in Graphviz's dot language (as
// micrograd's draw_dot draws it):
//
//   ag::write_dot(loss, "loss.dot");      then, in a shell:
//   dot -Tsvg loss.dot -o loss.svg
//
// Every tensor is a box (name or t<N>, shape, and its data and grad when it is
// small); every op is an ellipse (its grad_fn name and node id); arrows go from
// inputs to the op and from the op to its output, left to right. An op whose
// saved values backward() already freed is drawn "(freed)" with no inputs: the
// graph no longer knows them.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.hpp"

namespace ag {

struct DotOptions {
  int64_t max_values = 6;  // show data and grad of tensors with at most this many elements
};

std::string to_dot(const Tensor& root, const DotOptions& options = {});

// Writes to_dot(root) to `path` atomically (core/io/atomic_file.hpp: the old file
// stays whole if the write fails); throws ag::Error naming the path if it cannot.
void write_dot(const Tensor& root, const std::string& path, const DotOptions& options = {});

}  // namespace ag
