// The checker of exercise 04's LSTM step (make exercise-04): the learner's
// lstm_step against nn::LSTMCell::forward.
#include "tutorials/exercises/04_lstm_step.hpp"
#include "tutorials/exercises/checker.hpp"

using namespace ag;
using namespace ag::exercise;

int main() {
  ReferenceModeGuard plain;  // the library's plain formula code: the lines you write
  Checker check("04", "one LSTM step", "tutorials/exercises/04_lstm_step.cpp", "lstm_step",
                "nn::LSTMCell::forward (layers/recurrent/lstm.cpp)");
  const int64_t B = 2, D = 3, H = 4;
  Generator gen(8);
  const Tensor x = randn({B, D}, gen), h = randn({B, H}, gen), c = randn({B, H}, gen);
  const Tensor w_ih = randn({4 * H, D}, gen), w_hh = randn({4 * H, H}, gen);
  const Tensor b_ih = randn({4 * H}, gen), b_hh = randn({4 * H}, gen);
  const Tensor r_h = randn({B, H}, gen), r_c = randn({B, H}, gen);  // L = sum(h R) + sum(c R')
  check.inputs({{"x", x}, {"h_prev", h}, {"c_prev", c}, {"W_ih", w_ih}, {"W_hh", w_hh},
                {"b_ih", b_ih}, {"b_hh", b_hh}});

  Tensor yx = leaf(x, "x"), yh = leaf(h, "h"), yc = leaf(c, "c");
  Tensor ywi = leaf(w_ih, "weight_ih"), ywh = leaf(w_hh, "weight_hh");
  Tensor ybi = leaf(b_ih, "bias_ih"), ybh = leaf(b_hh, "bias_hh");
  LSTMStepSteps yours;
  auto usable = [](const Tensor& t, const Tensor& like) {
    return t.defined() && t.requires_grad() && t.shape() == like.shape();
  };
  if (check.run([&] { lstm_step(yx, yh, yc, ywi, ywh, ybi, ybh, yours); }) &&
      usable(yours.h, r_h) && usable(yours.c, r_c))
    check.run([&] { (sum(yours.h * r_h) + sum(yours.c * r_c)).backward(); });

  nn::LSTMCell cell(D, H);
  {
    NoGradGuard no_grad;
    cell.weight_ih.copy_(w_ih);
    cell.weight_hh.copy_(w_hh);
    cell.bias_ih.copy_(b_ih);
    cell.bias_hh.copy_(b_hh);
  }
  Tensor rx = leaf(x, "x"), rh = leaf(h, "h"), rc = leaf(c, "c");
  const nn::RecurrentState next = cell.forward(rx, {rh, rc});
  (sum(next.h * r_h) + sum(next.c * r_c)).backward();
  Tensor gates, i, f, g, o;
  {
    NoGradGuard no_grad;  // the lines of LSTMCell::forward and lstm_gates, for their values
    gates = nn::linear(rx, cell.weight_ih, cell.bias_ih) + nn::linear(rh, cell.weight_hh, cell.bias_hh);
    i = sigmoid(narrow(gates, 1, 0, H));
    f = sigmoid(narrow(gates, 1, H, H));
    g = tanh(narrow(gates, 1, 2 * H, H));
    o = sigmoid(narrow(gates, 1, 3 * H, H));
  }

  check.section("the step, one line at a time      yours vs the reference");
  check.compare("gates", yours.gates, gates,
                {"", "[i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh: nn::linear(x, W_ih, "
                     "b_ih) + nn::linear(h, W_hh, b_hh), (B,4H)"});
  check.compare("i", yours.i, i,
                {"", "the input gate, sigmoid of the FIRST quarter of the gates: "
                     "sigmoid(narrow(gates, 1, 0, H)) (PyTorch's order: i, f, g, o)"});
  check.compare("f", yours.f, f,
                {"", "the forget gate, sigmoid of the second quarter: narrow(gates, 1, H, H)"});
  check.compare("g", yours.g, g,
                {"", "the candidate, tanh (not sigmoid) of the third quarter: narrow(gates, 1, 2H, H)"});
  check.compare("o", yours.o, o,
                {"", "the output gate, sigmoid of the fourth quarter: narrow(gates, 1, 3H, H)"});
  check.compare("c", yours.c, next.c, {"", "c_t = f * c_{t-1} + i * g"});
  check.compare("h", yours.h, next.h, {"", "h_t = o * tanh(c_t)"});
  check.section("the gradients of L = sum(h_t * R) + sum(c_t * R'), R and R' seeded (B,H)");
  check.compare("dL/dx", yx.grad(), rx.grad(), {});
  check.compare("dL/dh_prev", yh.grad(), rh.grad(), {});
  check.compare("dL/dc_prev", yc.grad(), rc.grad(), {});
  check.compare("dL/dW_ih", ywi.grad(), cell.weight_ih.grad(), {});
  check.compare("dL/dW_hh", ywh.grad(), cell.weight_hh.grad(), {});
  check.compare("dL/db_ih", ybi.grad(), cell.bias_ih.grad(), {});
  check.compare("dL/db_hh", ybh.grad(), cell.bias_hh.grad(), {});
  return check.verdict(
      "Your steps' values agree but a gradient does not: some step was computed outside the\n"
      "graph (detach(), a NoGradGuard, values copied by hand), so backward cannot go through it.");
}
