// Recording one training step's tape into a .safetensors file, and reading one
// back. The comparison of two tapes is in tape_compare.cpp.
#include "autograd/tape.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "autograd/node.hpp"
#include "autograd/trace.hpp"
#include "core/error.hpp"
#include "core/io/file_bytes.hpp"
#include "core/io/safetensors.hpp"
#include "core/mode.hpp"

namespace ag {

namespace {

// What the tape keeps of one op until the step ends.
struct Entry {
  std::string name, forward_line, backward_line;
  Tensor output, grad_output;
  std::map<int, Tensor> inputs, grad_inputs;
  bool reached = false;  // the step's backward passed through it
};

struct Recording {
  std::string path;
  int64_t step = 1;        // which backward() ends the step recorded, counted from the start
  int64_t backwards = 0;   // backward() calls since the recording started
  bool from_environment = false;
  std::map<uint64_t, Entry> entries;  // by node id: the order the ops ran forward
};

Recording& recording() {
  static Recording r;
  return r;
}

void warn_if_never_written() {
  if (tape_flag && recording().from_environment)
    fmt::print(stderr,
               "attograd: AG_TAPE={}: nothing written, the program ended before backward() ran "
               "{} time(s)\n",
               recording().path, recording().step);
}

bool start_from_environment() {
  const char* path = std::getenv("AG_TAPE");
  if (path == nullptr || *path == '\0') return false;
  Recording& r = recording();
  r.path = path;
  r.from_environment = true;
  if (const char* step = std::getenv("AG_TAPE_STEP"); step != nullptr && *step != '\0') {
    char* end = nullptr;
    const long long n = std::strtoll(step, &end, 10);
    if (*end != '\0' || n < 1) {
      fmt::print(stderr, "attograd: AG_TAPE_STEP={} is not a step number (1, 2, ...); using 1\n",
                 step);
    } else {
      r.step = n;
    }
  }
  std::atexit(warn_if_never_written);
  return true;
}

// "00007.linear.input.1" -> {"00007", "linear", "input", "1"}
std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts(1);
  for (char c : key) {
    if (c == '.') parts.emplace_back();
    else parts.back() += c;
  }
  return parts;
}

// 1 to max_digits decimal digits (so that stoul cannot overflow).
bool is_number(const std::string& s, size_t max_digits) {
  return !s.empty() && s.size() <= max_digits &&
         s.find_first_not_of("0123456789") == std::string::npos;
}

bool is_op_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string key(size_t index, const std::string& name, const std::string& what) {
  return fmt::format("{:05}.{}.{}", index, name, what);
}

void write_tape() {
  Recording& r = recording();
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;
  size_t k = 0;
  for (auto& [id, e] : r.entries) {
    if (!e.reached) continue;
    tensors.push_back({key(k, e.name, "output"), e.output});
    if (e.grad_output.defined()) tensors.push_back({key(k, e.name, "grad_output"), e.grad_output});
    for (const auto& [i, t] : e.inputs) tensors.push_back({key(k, e.name, fmt::format("input.{}", i)), t});
    for (const auto& [i, t] : e.grad_inputs)
      tensors.push_back({key(k, e.name, fmt::format("grad_input.{}", i)), t});
    metadata[fmt::format("{:05}.forward", k)] = e.forward_line;
    if (!e.backward_line.empty()) metadata[fmt::format("{:05}.backward", k)] = e.backward_line;
    ++k;
  }
  metadata["format"] = "attograd tape";
  metadata["source"] = "attograd";
  metadata["mode"] = mode_name();
  metadata["real"] = real_name;
  metadata["ops"] = std::to_string(k);
  metadata["step"] = std::to_string(r.step);
  // Written beside the target and renamed, so a reader never sees half a tape.
  const std::string temporary = r.path + ".tmp";
  file_bytes::write_file("record_tape", temporary, serialize_safetensors(tensors, metadata));
  if (std::rename(temporary.c_str(), r.path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    AG_CHECK(false, "record_tape: cannot rename '{}' to '{}': {}", temporary, r.path,
             std::strerror(error));
  }
  if (r.from_environment)  // a program that called record_tape() knows; AG_TAPE's user is told
    fmt::print(stderr, "attograd: AG_TAPE: wrote training step {} ({} ops, {} mode) to {}\n",
               r.step, k, mode_name(), r.path);
}

}  // namespace

bool tape_flag = start_from_environment();

void record_tape(const std::string& path, int64_t step) {
  AG_CHECK(!path.empty(), "record_tape: the path is empty");
  AG_CHECK(step >= 1, "record_tape: step must be 1 (the next training step) or more, got {}", step);
  Recording& r = recording();
  r.path = path;
  r.step = step;
  r.backwards = 0;
  r.from_environment = false;
  r.entries.clear();
  tape_flag = true;
}

void stop_tape() {
  tape_flag = false;
  recording().entries.clear();
}

void tape_forward(const Node& node, const Tensor& output) {
  Entry e;
  e.name = forward_name(node.name);
  e.forward_line = forward_line(node, output);
  e.output = output.detach();
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const Tensor& input = node.inputs[i].tensor;
    if (input.defined() && input.is_leaf()) e.inputs[static_cast<int>(i)] = input.detach();
  }
  recording().entries[node.id] = std::move(e);
}

void tape_backward(const Node& node, const Tensor& grad_output, const Grads& grads) {
  auto found = recording().entries.find(node.id);
  if (found == recording().entries.end()) return;  // made before the recording started
  Entry& e = found->second;
  e.reached = true;
  e.grad_output = grad_output.detach();
  e.backward_line = backward_line(node, grad_output, grads);
  for (size_t i = 0; i < grads.size() && i < node.inputs.size(); ++i) {
    const Tensor& input = node.inputs[i].tensor;
    if (grads[i].defined() && input.defined() && input.is_leaf() && input.requires_grad())
      e.grad_inputs[static_cast<int>(i)] = grads[i].detach();
  }
}

void tape_backward_done() {
  Recording& r = recording();
  if (++r.backwards < r.step) {
    r.entries.clear();  // a step before the one asked for
    return;
  }
  tape_flag = false;
  write_tape();
  r.entries.clear();
}

// --- reading --------------------------------------------------------------------------

std::string Tape::summary() const {
  auto get = [this](const char* k) {
    auto it = metadata.find(k);
    return it == metadata.end() ? std::string() : it->second;
  };
  std::string out = get("source").empty() ? "unknown source" : get("source");
  const std::string mode = get("mode");  // "fast", "reference", or e.g. "torch 1.13.0"
  if (!mode.empty()) out += ", " + mode + (mode == "fast" || mode == "reference" ? " mode" : "");
  return fmt::format("{}, {} ops", out, ops.size());
}

Tape load_tape(const std::string& path) {
  Tape tape;
  tape.path = path;
  NamedTensors tensors = load_safetensors(path, &tape.metadata);
  auto format = tape.metadata.find("format");
  AG_CHECK(format != tape.metadata.end() && format->second == "attograd tape",
           "load_tape: '{}' is a .safetensors file but not a tape (its metadata has no "
           "\"format\": \"attograd tape\"); tapes come from ag::record_tape, AG_TAPE=path or "
           "tools/torch_tape.py",
           path);
  auto ops = tape.metadata.find("ops");
  AG_CHECK(ops != tape.metadata.end() && !ops->second.empty() &&
               ops->second.find_first_not_of("0123456789") == std::string::npos &&
               ops->second.size() < 9,
           "load_tape: '{}': the metadata \"ops\" must be the number of ops, got '{}'", path,
           ops == tape.metadata.end() ? "" : ops->second);
  const size_t count = std::stoul(ops->second);
  // Each op has at least its output: a count past the tensors is a broken file
  // (and must not make a reader allocate for it).
  AG_CHECK(count <= tensors.size(), "load_tape: '{}': the metadata says {} ops, but the file "
           "holds {} tensors (each op has at least its output)", path, count, tensors.size());
  tape.ops.resize(count);

  for (auto& [name, t] : tensors) {
    const std::vector<std::string> parts = split_key(name);
    const bool indexed = parts.size() == 4 && (parts[2] == "input" || parts[2] == "grad_input") &&
                         is_number(parts[3], 6);
    const bool plain = parts.size() == 3 && (parts[2] == "output" || parts[2] == "grad_output");
    AG_CHECK(parts.size() >= 3 && is_number(parts[0], 9) && is_op_name(parts[1]) &&
                 (plain || indexed),
             "load_tape: '{}': the tensor '{}' is not named INDEX.OP.output, .grad_output, "
             ".input.N or .grad_input.N",
             path, name);
    const size_t k = std::stoul(parts[0]);
    AG_CHECK(k < tape.ops.size(), "load_tape: '{}': the tensor '{}' is for op {}, but the tape "
             "has {} ops", path, name, k, tape.ops.size());
    TapeOp& op = tape.ops[k];
    AG_CHECK(op.name.empty() || op.name == parts[1],
             "load_tape: '{}': op {} is named both '{}' and '{}'", path, k, op.name, parts[1]);
    op.name = parts[1];
    if (parts[2] == "output") op.output = t;
    else if (parts[2] == "grad_output") op.grad_output = t;
    else if (parts[2] == "input") op.inputs[std::stoi(parts[3])] = t;
    else op.grad_inputs[std::stoi(parts[3])] = t;
  }
  for (const auto& [key, value] : tape.metadata) {  // "00007.forward", "00007.backward"
    const std::vector<std::string> parts = split_key(key);
    if (parts.size() != 2 || !is_number(parts[0], 9) ||
        (parts[1] != "forward" && parts[1] != "backward"))
      continue;
    const size_t index = std::stoul(parts[0]);
    if (index >= tape.ops.size()) continue;
    (parts[1] == "forward" ? tape.ops[index].forward_line : tape.ops[index].backward_line) = value;
  }
  for (size_t k = 0; k < tape.ops.size(); ++k)
    AG_CHECK(!tape.ops[k].name.empty() && tape.ops[k].output.defined(),
             "load_tape: '{}': op {} of {} has no output tensor ({:05}.NAME.output)", path, k,
             tape.ops.size(), k);
  return tape;
}

}  // namespace ag
