// The tape of one training step, written to a file, so that two runs can be
// compared op by op: yours and a reference, fast and reference mode, attograd
// and PyTorch (tools/torch_tape.py writes the same format). tools/tape_diff
// names the first op where they part ways.
//
//   ag::record_tape("step.safetensors");   // or AG_TAPE=step.safetensors ./program
//   ... forward, loss.backward() ...        // written when this backward() returns
//
// What is recorded: every op the trace (AG_TRACE, autograd/trace.hpp) prints,
// from record_tape() to the end of the next backward() (one training step:
// its forward and its backward), that the backward's gradient passed through.
// With AG_TAPE_STEP=n (or record_tape(path, n)) the n-th step instead: the
// ops after the (n-1)-th backward() up to the end of the n-th.
//
// The file is a .safetensors file (core/io/safetensors.hpp). Op k (0, 1, ... in
// the order they ran forward, as the trace's node ids) named NAME, as the
// trace names it (softmax, linear, cross_entropy, ...), has the tensors
//   "00007.softmax.output"        its output, as computed forward
//   "00007.softmax.grad_output"   dL/d(output), as its backward received it
//   "00007.linear.input.1"        each input that is a leaf (a parameter, the data)
//   "00007.linear.grad_input.1"   dL/d(that input), if it requires grad
// and the metadata "00007.forward" and "00007.backward": its two trace lines,
// with the node id (#3930) that pairs them in an AG_TRACE listing. Also
// "format" ("attograd tape"), "source" ("attograd"), "mode", "real" and "ops".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace ag {

struct Node;
using Grads = std::vector<Tensor, BufferAllocator<Tensor>>;  // autograd/node.hpp

// Records the next training step (or the step-th from now) into `path`.
void record_tape(const std::string& path, int64_t step = 1);
// Stops a recording that has not been written yet; nothing is written.
void stop_tape();

extern bool tape_flag;  // set while recording (from AG_TAPE when the program starts)
inline bool tape_recording() { return tape_flag; }

// Hooks, called by attach_node and by the engine when tape_recording().
void tape_forward(const Node& node, const Tensor& output);
void tape_backward(const Node& node, const Tensor& grad_output, const Grads& grads);
void tape_backward_done();  // at the end of each backward(): may write the file

// --- reading and comparing tapes ---------------------------------------------------------

struct TapeOp {
  std::string name;                         // "softmax"
  std::string forward_line, backward_line;  // the trace's lines ("" if absent)
  Tensor output, grad_output;               // undefined if absent
  std::map<int, Tensor> inputs;             // leaf inputs by position
  std::map<int, Tensor> grad_inputs;
};

struct Tape {
  std::string path;
  std::map<std::string, std::string> metadata;
  std::vector<TapeOp> ops;
  // "attograd, fast mode, 9 ops" or "pytorch, 9 ops"
  std::string summary() const;
};

// A tape file, checked: an ag::Error names the file and what is wrong in it.
Tape load_tape(const std::string& path);

// Two values agree when |a - b| <= atol + rtol * |b| (NaN agrees with NaN,
// an infinity with the same infinity).
struct TapeTolerance {
  double atol = 1e-6;
  double rtol = 1e-4;
};

struct TapeComparison {
  // Where the first difference is: none (the tapes agree on every op paired),
  // structure (no op in common), forward (an output or a leaf input), backward.
  enum class Kind { none, structure, forward, backward };
  Kind kind = Kind::none;
  // The ops compared, as pairs of indices into a.ops and b.ops. Tapes of the
  // same ops pair 1 to 1; otherwise the longest sequence of ops the two have in
  // common, in order, by name and output shape: a fused op on one side (fast
  // mode's linear, PyTorch's multi_head_attention_forward) and the ops it
  // stands for on the other are passed over, the ops around them compared.
  std::vector<std::pair<size_t, size_t>> pairs;
  size_t a_op = 0, b_op = 0;  // the first op that differs (kind != none)
  std::string tensor;         // which of its tensors: "output", "grad_output", "input 1", ...
  double max_abs_diff = 0;    // of that tensor
  std::vector<int64_t> index;  // the first element beyond the tolerance, and its two values
  double a_value = 0, b_value = 0;
  double largest_agreeing = 0;  // the largest difference among the tensors that agree
  std::string report;           // all of the above, for people (what tools/tape_diff prints)
};

TapeComparison compare_tapes(const Tape& a, const Tape& b, const TapeTolerance& tolerance = {});

}  // namespace ag
