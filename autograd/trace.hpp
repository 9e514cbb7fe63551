// Tracing: the tape of a training step, printed as it is written and read.
//
// With AG_TRACE=1 in the environment (or ag::set_trace(true)), every op that
// records a node prints one line to stderr when it runs forward, and again
// when backward() runs its derivative:
//
//   [trace] forward  #3929 linear                   (100,10,16), 'weight' (1,16), 'bias' (1) -> (100,10,1)
//   [trace] forward  #3930 softmax                  (100,10,1) -> (100,10,1)
//   ...
//   [trace] backward #3930 SoftmaxBackward          grad (100,10,1) -> (100,10,1)
//   [trace] backward #3929 LinearBackward           grad (100,10,1) -> none, 'weight' (1,16), 'bias' (1)
//
// #3929 is the node's id (creation order, as in ag::to_dot's pictures), so a
// forward line and its backward line pair up. Only recorded ops are traced:
// those under grad mode with an input that requires grad (the tape backward
// walks); work under NoGradGuard, such as an optimizer's step, prints nothing.
//
// Off by default; when off, the cost is one test of a bool per recorded op.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace ag {

struct Node;
using Grads = std::vector<Tensor, BufferAllocator<Tensor>>;  // autograd/node.hpp

extern bool trace_flag;  // from AG_TRACE when the program starts; set_trace changes it
// Lines go to `sink` (stderr unless given), so `AG_TRACE=1 prog 2> tape.txt`
// keeps them apart from the program's own output.
void set_trace(bool enabled, std::FILE* sink = stderr);
inline bool trace_enabled() { return trace_flag; }

// Called by attach_node, once output's node is set.
void trace_forward(const Node& node, const Tensor& output);
// Called by the engine after node's backward turned grad_output into grads.
void trace_backward(const Node& node, const Tensor& grad_output, const Grads& grads);

// "log" for "LogBackward": the name the user called the op by.
std::string forward_name(const std::string& node_name);

// The lines themselves, without the "[trace] " in front:
//   "forward  #3930 softmax                  (100,10,1) -> (100,10,1)"
//   "backward #3930 SoftmaxBackward          grad (100,10,1) -> (100,10,1)"
// (a tape, autograd/tape.hpp, keeps them beside each op's tensors).
std::string forward_line(const Node& node, const Tensor& output);
std::string backward_line(const Node& node, const Tensor& grad_output,
                          const Grads& grads);

}  // namespace ag
