// Tracing (AG_TRACE=1 / ag::set_trace): one line per recorded op forward, one
// per node backward, with the node's id pairing them, and nothing when off.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "autograd/attograd.hpp"
#include "layers/nn.hpp"

using namespace ag;

namespace {

// Runs `step` with tracing on into a temporary file; returns what it printed.
template <typename F>
std::string traced(F step) {
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  const bool was_on = trace_enabled();
  set_trace(true, sink);
  step();
  set_trace(was_on);
  std::fflush(sink);
  std::rewind(sink);
  std::string text;
  for (int c; (c = std::fgetc(sink)) != EOF;) text += static_cast<char>(c);
  std::fclose(sink);
  return text;
}

int count_lines_with(const std::string& text, const std::string& fragment) {
  int count = 0;
  for (size_t at = text.find(fragment); at != std::string::npos; at = text.find(fragment, at + 1))
    ++count;
  return count;
}

}  // namespace

TEST_CASE("trace: each recorded op forward and backward, names, shapes and node ids") {
  Tensor w = tensor({{1, 2}, {3, 4}}).set_name("w");
  w.requires_grad_();
  Tensor x = tensor({{1}, {1}}).set_name("x");
  std::string text = traced([&] {
    Tensor y = matmul(w, x);  // (2,2) x (2,1) -> (2,1)
    Tensor loss = sum(tanh(y));
    loss.backward();
  });
  INFO(text);
  // Three ops forward, three nodes backward.
  CHECK(count_lines_with(text, "[trace] forward ") == 3);
  CHECK(count_lines_with(text, "[trace] backward ") == 3);
  // The forward line names the op by the name the user called and the inputs
  // by name and shape; the backward line names the node and the gradients.
  CHECK(text.find("matmul") != std::string::npos);
  CHECK(text.find("'w' (2,2), 'x' (2,1) -> (2,1)") != std::string::npos);
  CHECK(text.find("tanh") != std::string::npos);
  CHECK(text.find("grad (2,1) -> 'w' (2,2), none") != std::string::npos);
  // The matmul node's id appears once forward and once backward, in that order.
  const size_t forward_at = text.find("forward  #");
  REQUIRE(forward_at != std::string::npos);
  const size_t id_at = forward_at + 10;
  const std::string matmul_id = text.substr(id_at, text.find(' ', id_at) - id_at);
  const size_t backward_at = text.find("backward #" + matmul_id + " ");
  CHECK(backward_at != std::string::npos);
  CHECK(backward_at > forward_at);
  // Backward runs from the loss down: the sum's node comes first.
  CHECK(text.find("SumBackward") < text.find("MatmulBackward"));
}

TEST_CASE("trace: off prints nothing; no-grad work and constants are not on the tape") {
  Tensor a = tensor({1, 2, 3});
  a.requires_grad_();
  std::string off = traced([&] {
    set_trace(false);
    sum(a * a).backward();
  });
  CHECK(off.empty());
  std::string untaped = traced([&] {
    Tensor constant = tensor({1, 2}) * 2;  // no input requires grad: nothing recorded
    NoGradGuard no_grad;
    Tensor b = a * 3;
    CHECK(!b.requires_grad());
    CHECK(constant.numel() == 2);
  });
  CHECK(untaped.empty());
}

TEST_CASE("trace: a gradient added in place into its input's (narrow) is traced too") {
  Tensor a = tensor({1, 2, 3, 4}).set_name("a");
  a.requires_grad_();
  std::string text = traced([&] {
    // Two slices of one tensor: the second slice's backward adds into the
    // gradient the first one left, in place.
    Tensor loss = sum(narrow(a, 0, 0, 2)) + sum(narrow(a, 0, 2, 2));
    loss.backward();
  });
  INFO(text);
  CHECK(count_lines_with(text, "[trace] backward") == 5);
  CHECK(count_lines_with(text, "NarrowBackward") == 2);
  CHECK(count_lines_with(text, "-> 'a' (4)") == 2);
}

TEST_CASE("trace: forward lines name the function the source calls, and the mode") {
  CHECK(forward_name("CrossEntropyBackward") == "cross_entropy");
  CHECK(forward_name("LayerNormBackward") == "layer_norm");
  CHECK(forward_name("MaskedFillBackward") == "masked_fill");
  Tensor logits = tensor({{1, 2, 3}, {0, 1, 0}});
  logits.requires_grad_();
  Tensor targets = tensor({2, 1});
  auto step = [&] {
    Tensor y = nn::layer_norm(transpose(logits, 0, 1), Tensor(), Tensor());
    nn::cross_entropy(transpose(y, 0, 1), targets).backward();
  };
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    const std::string text = traced(step);
    INFO(text);
    CHECK(text.find(plain ? "[trace] mode: reference" : "[trace] mode: fast") != std::string::npos);
    CHECK(text.find(" transpose ") != std::string::npos);
    if (plain) {
      // the formulas op by op: layer_norm's mean, sub, pow, ...; log_softmax then nll_loss
      CHECK(text.find(" mean ") != std::string::npos);
      CHECK(text.find(" log_softmax ") != std::string::npos);
      CHECK(text.find(" nll_loss ") != std::string::npos);
    } else {
      CHECK(text.find(" layer_norm ") != std::string::npos);
      CHECK(text.find(" cross_entropy ") != std::string::npos);
    }
  }
}
