// The lookahead mask of new positions after cached ones, and the checks of a
// Transformer layer's masks.
#include "layers/transformer/transformer_masks.hpp"

#include "core/creation.hpp"
#include "core/error.hpp"

namespace ag::nn {

Tensor causal_mask_rows(int64_t past, int64_t n) {
  AG_CHECK(past >= 0 && n >= 0, "causal_mask_rows: past {} and n {} must be >= 0", past, n);
  const int64_t total = past + n;
  Tensor mask = zeros({n, total});
  // [F4.8] 1 - band_part(ones, -1, 0), its rows past..past+n-1: new position i
  // (position past + i of the sequence) may not read keys after past + i
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = past + i + 1; j < total; ++j) mask.data()[i * total + j] = 1;
  return mask;
}

void check_attention_masks(const std::string& layer, const char* mask_name, const Tensor& attn_mask,
                           const char* padding_name, const Tensor& key_padding_mask, int64_t batch,
                           int64_t heads, int64_t tq, int64_t tk, const char* query_letter,
                           const char* key_letter) {
  if (attn_mask.defined()) {
    const int64_t dims = attn_mask.dim();
    const Shape full = dims == 2   ? Shape{tq, tk}
                       : dims == 3 ? Shape{batch, tq, tk}
                                   : Shape{batch, heads, tq, tk};
    bool fits = dims >= 2 && dims <= 4;
    for (int64_t i = 0; fits && i < dims; ++i)
      fits = attn_mask.size(i) == full[size_t(i)] || attn_mask.size(i) == 1;
    AG_CHECK(fits,
             "{}: {} {} must be ({q},{k}) = ({},{}), (B,{q},{k}) = ({},{},{}) or (B,h,{q},{k}) = "
             "({},{},{},{}) (a size of 1 broadcasts); 1 = blocked. Padding (B,{k}) goes in {}",
             layer, mask_name, describe(attn_mask), tq, tk, batch, tq, tk, batch, heads, tq, tk,
             padding_name, fmt::arg("q", query_letter), fmt::arg("k", key_letter));
  }
  if (key_padding_mask.defined()) {
    const Shape& shape = key_padding_mask.shape();
    AG_CHECK(shape == Shape({batch, tk}) || shape == Shape({batch, 1, tk}),
             "{}: {} {} must be (B,{}) = ({},{}) or (B,1,{}), 1 where a key is padding", layer,
             padding_name, describe(key_padding_mask), key_letter, batch, tk, key_letter);
  }
}

}  // namespace ag::nn
