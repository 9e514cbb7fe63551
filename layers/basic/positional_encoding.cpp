// Sinusoidal positional encoding [F3.1], the table and the module that adds it.
#include "layers/basic/positional_encoding.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/error.hpp"

namespace ag::nn {

Tensor sinusoidal_encoding(int64_t max_len, int64_t d_model) {
  AG_CHECK(max_len > 0 && d_model > 0,
           "sinusoidal_encoding: max_len and d_model must be positive, got {} and {}", max_len,
           d_model);
  Tensor pe = Tensor::empty({max_len, d_model}, "sinusoidal_encoding");
  for (int64_t pos = 0; pos < max_len; ++pos) {
    for (int64_t f = 0; f < d_model; ++f) {
      const int64_t i = f / 2;  // the pair (2i, 2i+1) this feature belongs to
      // [F3.1] PE(pos,2i) = sin(pos / 10000^(2i/d)), PE(pos,2i+1) = cos(pos / 10000^(2i/d))
      const double angle = double(pos) / std::pow(10000.0, double(2 * i) / double(d_model));
      pe.data()[pos * d_model + f] =
          static_cast<real>(f % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
  return pe;
}

PositionalEncoding::PositionalEncoding(int64_t d_model, int64_t max_len)
    : UnaryModule("PositionalEncoding"), d_model(d_model), max_len(max_len) {
  AG_CHECK(d_model > 0 && max_len > 0,
           "PositionalEncoding: d_model and max_len must be positive, got {} and {}", d_model,
           max_len);
  pe = register_buffer("pe", sinusoidal_encoding(max_len, d_model));
}

namespace {

// x (B,T,d) or (T,d), whose T positions from `offset` on are rows of the table.
void check_positions(const Tensor& x, int64_t offset, int64_t d_model, int64_t max_len) {
  AG_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3) && x.shape().back() == d_model,
           "PositionalEncoding: input {} must be (batch, time, d_model = {}) or (time, d_model)",
           describe(x), d_model);
  const int64_t time = x.size(-2);
  AG_CHECK(offset >= 0 && offset + time <= max_len,
           "PositionalEncoding: sequence length {} of input {} from position {} exceeds max_len {}",
           time, describe(x), offset, max_len);
}

}  // namespace

Tensor PositionalEncoding::forward(const Tensor& x, int64_t offset) {
  check_positions(x, offset, d_model, max_len);
  const int64_t time = x.size(-2);
  // [F3.1] x + PE[offset:offset+T]   (B,T,d) + (T,d): the same code for every sequence
  return x + slice(pe, 0, offset, offset + time);
}

std::string PositionalEncoding::extra_repr() const {
  return fmt::format("d_model={}, max_len={}", d_model, max_len);
}

}  // namespace ag::nn
