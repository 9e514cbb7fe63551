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

Tensor FeedForward::forward(const Tensor& x) {
  AG_CHECK(x.defined() && x.dim() >= 1 && x.shape().back() == d_model,
           "FeedForward: input {} must be (..., d_model = {})", describe(x), d_model);
  // Fast mode: the first layer and its ReLU as the one op linear_relu, which
  // never stores W_1 x + b_1 (as nn::Sequential runs a Linear then a ReLU);
  // a linear1 replaced by a subclass with its own forward runs as written.
  if (!reference_mode() && typeid(*linear1) == typeid(Linear))
    return linear2->forward(dropout->forward(linear_relu(x, linear1->weight, linear1->bias)));
  // [F3.3] hidden = ReLU(W_1 x + b_1)           (..., d) -> (..., d_ff)
  Tensor hidden = dropout->forward(relu(linear1->forward(x)));
  // [F3.3] FFN(x) = W_2 hidden + b_2            (..., d_ff) -> (..., d)
  return linear2->forward(hidden);
}

}  // namespace ag::nn
