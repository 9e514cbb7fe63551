// The tape of a training step in a file (ag::record_tape, AG_TAPE) and the
// comparison of two tapes (ag::compare_tapes, what tools/tape_diff prints).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "autograd/node.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::max_abs_diff;
namespace fs = std::filesystem;

namespace {

// A path under the system's temporary directory, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& name) {
    static int counter = 0;
    path_ = (fs::temp_directory_path() /
             fmt::format("attograd_tape_{}_{}_{}_{}", real_name, ::getpid(), counter++, name))
                .string();
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// y = x * 2 forward; backward passes `backward_factor` * g (2 is right): a
// node whose backward can be made wrong while its forward stays right.
Tensor doubled(const Tensor& x, real backward_factor) {
  Tensor y;
  {
    NoGradGuard values_only;
    y = x * real(2);
  }
  record("DoubledBackward", y, {x}, [backward_factor](const Tensor& g, const Tensor&) {
    return Grads{g * backward_factor};
  });
  return y;
}

struct Step {
  Tensor x, w;
};

// One step of a tiny model: loss = sum(doubled(tanh(x W)) * scale), recorded
// into `path`. x (3,4) and W (4,2) are the same seeded values every time.
Step taped_step(const std::string& path, real scale = 1, real backward_factor = 2,
                real w_shift = 0) {
  Generator gen(7);
  Step s{randn({3, 4}, gen).set_name("x"), randn({4, 2}, gen).set_name("w")};
  {
    NoGradGuard no_grad;
    s.w.add_(ones({4, 2}), w_shift);
  }
  s.w.requires_grad_();
  record_tape(path);
  Tensor h = tanh(matmul(s.x, s.w));
  Tensor loss = sum(doubled(h, backward_factor) * scale);
  loss.backward();
  return s;
}

}  // namespace

TEST_CASE("trace: record_tape writes one step's ops with their values and gradients") {
  TempFile file("step.safetensors");
  const Step s = taped_step(file.path());
  CHECK_FALSE(tape_recording());  // written when the backward returned
  const Tape tape = load_tape(file.path());
  REQUIRE(tape.ops.size() == 5);
  const char* names[] = {"matmul", "tanh", "doubled", "mul", "sum"};
  for (size_t k = 0; k < 5; ++k) CHECK(tape.ops[k].name == names[k]);
  CHECK(tape.metadata.at("source") == "attograd");
  CHECK(tape.metadata.at("mode") == mode_name());
  // Forward: the leaf inputs as they were, each output as computed.
  CHECK(max_abs_diff(tape.ops[0].inputs.at(0), s.x) == 0);
  CHECK(max_abs_diff(tape.ops[0].inputs.at(1), s.w) == 0);
  const Tensor h = tanh(matmul(s.x, s.w.detach()));
  CHECK(max_abs_diff(tape.ops[1].output, h) == 0);
  CHECK(tape.ops[4].output.numel() == 1);
  // Backward: dL/d(output) of each op, and dL/dW from matmul: W's .grad.
  CHECK(tape.ops[4].grad_output.item() == 1);
  CHECK(max_abs_diff(tape.ops[2].grad_output, ones({3, 2})) == 0);
  CHECK(max_abs_diff(tape.ops[0].grad_inputs.at(1), s.w.grad()) == 0);
  CHECK(tape.ops[0].grad_inputs.count(0) == 0);  // x requires no grad
  // The trace's lines, with the node ids that pair them.
  CHECK(tape.ops[1].forward_line.find("forward  #") == 0);
  CHECK(tape.ops[1].forward_line.find("tanh") != std::string::npos);
  CHECK(tape.ops[1].backward_line.find("TanhBackward") != std::string::npos);
}

TEST_CASE("trace: a tape keeps each op's own gradient of a weight two ops share") {
  // Fast mode's backward adds a node's term into the sum its input has
  // gathered (GradSums); while a tape records, each op returns its own term.
  ReferenceModeGuard fast(false);  // the linear op (reference mode runs matmul and add)
  TempFile file("shared.safetensors");
  Generator gen(9);
  const Tensor x1 = randn({2, 3}, gen), x2 = randn({5, 3}, gen);
  Tensor w = randn({4, 3}, gen);
  w.requires_grad_();
  record_tape(file.path());
  (sum(nn::linear(x1, w)) + sum(nn::linear(x2, w)) * real(3)).backward();
  const Tape tape = load_tape(file.path());
  // Each linear's dL/dW, told apart by its input x (2 or 5 rows)
  std::map<int64_t, Tensor> terms;
  for (const auto& op : tape.ops)
    if (op.name == "linear") terms[op.inputs.at(0).size(0)] = op.grad_inputs.at(1);
  REQUIRE(terms.size() == 2);
  // dL/dW of linear(x, W) under sum is ones^T x, times 3 for the second
  NoGradGuard no_grad;
  const Tensor first = matmul(transpose(ones({2, 4}), 0, 1), x1);
  const Tensor second = matmul(transpose(ones({5, 4}), 0, 1), x2) * real(3);
  CHECK(max_abs_diff(terms.at(2), first) <= 1e-5);
  CHECK(max_abs_diff(terms.at(5), second) <= 1e-5);
  CHECK(max_abs_diff(w.grad(), first + second) <= 1e-5);
}

TEST_CASE("trace: a tape holds the step asked for, and only ops its gradient passed through") {
  TempFile file("second.safetensors");
  Generator gen(3);
  Tensor w = randn({2, 2}, gen);
  w.requires_grad_();
  record_tape(file.path(), /*step=*/2);
  for (int step = 1; step <= 3; ++step) {
    Tensor unused = exp(w);  // recorded forward, but the loss does not use it
    Tensor loss = step == 2 ? mean(w * w) : sum(w);
    loss.backward();
    CHECK(tape_recording() == (step < 2));
  }
  const Tape tape = load_tape(file.path());
  REQUIRE(tape.ops.size() == 2);
  CHECK(tape.ops[0].name == "mul");
  CHECK(tape.ops[1].name == "mean");
  CHECK(tape.metadata.at("step") == "2");
}

TEST_CASE("trace: compare_tapes finds the first op whose output differs") {
  TempFile a("a.safetensors"), b("b.safetensors");
  taped_step(a.path());
  taped_step(b.path(), /*scale=*/real(1.5));  // the mul by the scale changed
  const TapeComparison same = compare_tapes(load_tape(a.path()), load_tape(a.path()));
  CHECK(same.kind == TapeComparison::Kind::none);
  CHECK(same.report.find("the tapes agree: 5 ops") != std::string::npos);
  const TapeComparison c = compare_tapes(load_tape(a.path()), load_tape(b.path()));
  INFO(c.report);
  CHECK(c.kind == TapeComparison::Kind::forward);
  CHECK(c.a_op == 3);
  CHECK(c.tensor == "output");
  CHECK(c.b_value == doctest::Approx(1.5 * c.a_value));
  CHECK(c.report.find("op 3 (mul), its output (forward)") != std::string::npos);
  CHECK(c.report.find("a: forward  #") != std::string::npos);  // the trace line, both sides
}

TEST_CASE("trace: compare_tapes finds a wrong backward when every output agrees") {
  TempFile a("right.safetensors"), b("wrong.safetensors");
  taped_step(a.path());
  taped_step(b.path(), 1, /*backward_factor=*/3);
  const TapeComparison c = compare_tapes(load_tape(a.path()), load_tape(b.path()));
  INFO(c.report);
  // Backward reaches sum, mul, doubled (right so far: it received 1s), then
  // tanh receives doubled's wrong gradient: the first gradient that differs.
  CHECK(c.kind == TapeComparison::Kind::backward);
  CHECK(c.a_op == 1);
  CHECK(c.tensor == "grad_output");
  CHECK(c.report.find("DoubledBackward") == std::string::npos);
  CHECK(c.report.find("TanhBackward") != std::string::npos);
}

TEST_CASE("trace: compare_tapes says when two runs did not start from the same weights") {
  TempFile a("w.safetensors"), b("shifted.safetensors");
  taped_step(a.path());
  taped_step(b.path(), 1, 2, /*w_shift=*/real(0.01));
  const TapeComparison c = compare_tapes(load_tape(a.path()), load_tape(b.path()));
  INFO(c.report);
  CHECK(c.kind == TapeComparison::Kind::forward);
  CHECK(c.a_op == 0);
  CHECK(c.tensor == "input 1");
  CHECK(c.report.find("did not start from the same values") != std::string::npos);
}

TEST_CASE("trace: compare_tapes pairs the ops two tapes have in common, by name and shape") {
  auto op = [](const char* name, const Tensor& output) {
    TapeOp o;
    o.name = name;
    o.output = output;
    return o;
  };
  const Tensor v = tensor({1, 2, 3}), s = tensor({6});
  Tape fine, coarse, other;
  fine.ops = {op("linear", v), op("exp", v), op("sum", s), op("linear", s)};
  coarse.ops = {op("linear", v), op("linear", s)};
  const TapeComparison c = compare_tapes(fine, coarse);
  INFO(c.report);
  CHECK(c.kind == TapeComparison::Kind::none);
  REQUIRE(c.pairs.size() == 2);
  CHECK(c.pairs[0] == std::make_pair(size_t(0), size_t(0)));
  CHECK(c.pairs[1] == std::make_pair(size_t(3), size_t(1)));
  CHECK(c.report.find("the tapes ran different ops: 2 of a's 4 and b's 2 paired") !=
        std::string::npos);
  other.ops = {op("linear", tensor({1, 2, 4}))};  // the same op, another value
  const TapeComparison d = compare_tapes(fine, other);
  INFO(d.report);
  CHECK(d.kind == TapeComparison::Kind::forward);
  CHECK(d.a_op == 0);
  CHECK(d.index == std::vector<int64_t>{2});
  other.ops = {op("tanh", v)};  // no op in common
  const TapeComparison e = compare_tapes(fine, other);
  INFO(e.report);
  CHECK(e.kind == TapeComparison::Kind::structure);
  CHECK(e.report.find("no op in common") != std::string::npos);
}

TEST_CASE("trace: record_tape and load_tape refuse what they cannot use") {
  check_error([] { record_tape(""); }, {"record_tape: the path is empty"});
  check_error([] { record_tape("t.safetensors", 0); }, {"record_tape: step must be 1"});
  CHECK_FALSE(tape_recording());
  TempFile plain("plain.safetensors");
  save_safetensors(plain.path(), {{"w", ones({2})}});
  check_error([&] { load_tape(plain.path()); }, {"load_tape: '", "is a .safetensors file but not a tape"});
  check_error([] { load_tape("/nonexistent/tape.safetensors"); }, {"cannot open"});
  // A broken or hostile tape: an error naming what is wrong, before any large allocation.
  TempFile broken("broken.safetensors");
  const std::map<std::string, std::string> five_ops{{"format", "attograd tape"}, {"ops", "5"}};
  save_safetensors(broken.path(), {{"00000.exp.output", ones({2})}}, five_ops);
  check_error([&] { load_tape(broken.path()); }, {"the metadata says 5 ops, but the file holds 1"});
  const std::map<std::string, std::string> one_op{{"format", "attograd tape"}, {"ops", "1"}};
  save_safetensors(broken.path(), {{"99999999999999999999.exp.output", ones({2})}}, one_op);
  check_error([&] { load_tape(broken.path()); }, {"is not named INDEX.OP.output"});
  save_safetensors(broken.path(), {{"00000.exp.grad_output", ones({2})}}, one_op);
  check_error([&] { load_tape(broken.path()); }, {"op 0 of 1 has no output tensor"});
}
