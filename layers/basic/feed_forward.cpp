// Position-wise feed-forward network [F3.3].
#include "layers/basic/feed_forward.hpp"

#include <typeinfo>

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"

namespace ag::nn {

FeedForward::FeedForward(int64_t d_model, int64_t d_ff, real dropout_p)
    : UnaryModule("FeedForward"), d_model(d_model), d_ff(d_ff) {
  AG_CHECK(d_model > 0 && d_ff > 0, "FeedForward: d_model and d_ff must be positive, got {} and {}",
           d_model, d_ff);
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, d_ff));
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p));
  linear2 = register_module("linear2", std::make_shared<Linear>(d_ff, d_model));
}

namespace {
void check_ffn_input(const Tensor& x, int64_t d_model, const char* op) {
  AG_CHECK(x.defined() && x.dim() >= 1 && x.shape().back() == d_model,
           "{}: input {} must be (..., d_model = {})", op, describe(x), d_model);
}
}  // namespace

Tensor FeedForward::forward(const Tensor& x) {
  check_ffn_input(x, d_model, "FeedForward");
  return run(x, Tensor());
}

Tensor FeedForward::forward_plus_residual(const Tensor& residual, const Tensor& x) {
  check_ffn_input(x, d_model, "FeedForward::forward_plus_residual");
  AG_CHECK(residual.defined() && residual.shape() == x.shape(),
           "FeedForward::forward_plus_residual: residual {} must have the shape of input {}",
           describe(residual), describe(x));
  return run(x, residual);
}

Tensor FeedForward::run(const Tensor& x, const Tensor& residual) {
  Tensor hidden;
  // Fast mode: the first layer and its ReLU as the one op linear_relu, which
  // never stores W_1 x + b_1 (as nn::Sequential runs a Linear then a ReLU);
  // a linear1 replaced by a subclass with its own forward runs as written.
  if (!reference_mode() && typeid(*linear1) == typeid(Linear)) {
    hidden = dropout->forward(linear_relu(x, linear1->weight, linear1->bias));
  } else {
    // [F3.3] hidden = ReLU(W_1 x + b_1)           (..., d) -> (..., d_ff)
    hidden = dropout->forward(relu(linear1->forward(x)));
  }
  if (!residual.defined()) {
    // [F3.3] FFN(x) = W_2 hidden + b_2            (..., d_ff) -> (..., d)
    return linear2->forward(hidden);
  }
  // residual + W_2 hidden + b_2: the product adds to residual + b_2 (fast
  // mode), unless linear2 is a subclass with its own forward
  if (typeid(*linear2) == typeid(Linear))
    return linear_plus_residual(hidden, linear2->weight, linear2->bias, residual);
  return residual + linear2->forward(hidden);
}

}  // namespace ag::nn
