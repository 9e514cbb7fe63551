// Embedding: a lookup table of vectors, one row per token id, as
// torch.nn.Embedding. The first layer of the tiny Transformer [F2.8] and of
// every encoder and decoder in the seeds.
#pragma once

#include <vector>

#include "layers/framework/module.hpp"

namespace ag::nn {

class Embedding : public UnaryModule {
 public:
  // PyTorch's default initialisation: weight ~ N(0, 1).
  Embedding(int64_t num_embeddings, int64_t embedding_dim);

  // indices: a tensor of integer ids in [0, num_embeddings), any shape (...)
  //   -> (..., embedding_dim); the gradient of a row used twice is the sum.
  Tensor forward(const Tensor& indices) override;
  Tensor forward(const std::vector<int64_t>& indices);  // (n) -> (n, embedding_dim)
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  Tensor weight;  // (num_embeddings, embedding_dim)
};

// The check a model that embeds token ids makes at its entry, so the error
// names the model: every element of `tokens` a whole number in 0..vocab-1, or
// "op: <what>token 9 at position 1 is outside the <vocabulary>vocabulary 0..4"
// (position: the flat index), e.g. what = "source ", vocabulary = "source ".
void check_tokens(const Tensor& tokens, int64_t vocab, const char* op, const char* what = "",
                  const char* vocabulary = "");

}  // namespace ag::nn
