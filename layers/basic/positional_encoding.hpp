// Sinusoidal positional encoding [F3.1]. Attention by itself is blind to
// order: permuting the positions of the inputs permutes the outputs the same
// way. Seed 003 (section 3.1) says a position code is added to the inputs but
// gives no formula; this is the one of Vaswani et al. (2017):
//
//   PE(pos, 2i)   = sin(pos / 10000^(2i/d))
//   PE(pos, 2i+1) = cos(pos / 10000^(2i/d))        pos = 0..max_len-1, i = 0..d/2-1
//
// Each pair of features (2i, 2i+1) turns around a circle at its own speed,
// from one turn per 2*pi positions (i = 0) down to one per 10000*2*pi, so
// PE(pos + k) is a fixed rotation of PE(pos): attention can learn "k positions
// back" as a linear map.
#pragma once

#include "layers/framework/module.hpp"

namespace ag::nn {

// The table (max_len, d_model); d_model may be odd (the last sine has no cosine).
Tensor sinusoidal_encoding(int64_t max_len, int64_t d_model);

class PositionalEncoding : public UnaryModule {
 public:
  PositionalEncoding(int64_t d_model, int64_t max_len = 5000);
  // x: (B,T,d_model) or (T,d_model), T <= max_len -> x + PE[0:T]
  Tensor forward(const Tensor& x) override { return forward(x, 0); }
  // x holds positions offset..offset+T-1 (generation with a KV cache feeds one
  // new position at a time) -> x + PE[offset:offset+T]; offset + T <= max_len
  Tensor forward(const Tensor& x, int64_t offset);
  std::string extra_repr() const override;

  int64_t d_model, max_len;
  Tensor pe;  // buffer (max_len, d_model): saved with the model, not trained
};

}  // namespace ag::nn
