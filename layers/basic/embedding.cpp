// Embedding: row lookup by index_select, whose backward adds each output row's
// gradient into the table row it came from.
#include "layers/basic/embedding.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/framework/init.hpp"

namespace ag::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim)
    : UnaryModule("Embedding"), num_embeddings(num_embeddings), embedding_dim(embedding_dim) {
  AG_CHECK(num_embeddings > 0 && embedding_dim > 0,
           "Embedding: num_embeddings and embedding_dim must be positive, got {} and {}",
           num_embeddings, embedding_dim);
  weight = register_parameter("weight", Tensor::empty({num_embeddings, embedding_dim}, "Embedding"));
  init::normal_(weight);
}

namespace {

// Every index names a row of a table of num_embeddings rows.
void check_indices(const std::vector<int64_t>& indices, int64_t num_embeddings) {
  for (size_t i = 0; i < indices.size(); ++i)
    AG_CHECK(indices[i] >= 0 && indices[i] < num_embeddings,
             "Embedding: index {} at position {} is out of range for {} embeddings (valid: 0..{})",
             indices[i], i, num_embeddings, num_embeddings - 1);
}

}  // namespace

Tensor Embedding::forward(const std::vector<int64_t>& indices) {
  check_indices(indices, num_embeddings);
  // [F2.8] the token embedding: row i of the table for token id i     (n) -> (n, dim)
  return index_select(weight, 0, indices);
}

Tensor Embedding::forward(const Tensor& indices) {
  check_defined(indices, "Embedding", "indices");
  std::vector<int64_t> ids = to_indices(reshape(indices.detach(), {-1}), "Embedding");
  Shape shape = indices.shape();
  shape.push_back(embedding_dim);
  return reshape(forward(ids), shape);  // (n, dim) -> (..., dim)
}

void check_tokens(const Tensor& tokens, int64_t vocab, const char* op, const char* what,
                  const char* vocabulary) {
  check_defined(tokens, op, "tokens");
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    const real t = tokens.data()[i];
    AG_CHECK(t == std::floor(t), "{}: {}token {} at position {} is not an integer", op, what, t, i);
    AG_CHECK(t >= 0 && t < real(vocab),
             "{}: {}token {} at position {} is outside the {}vocabulary 0..{}", op, what, t, i,
             vocabulary, vocab - 1);
  }
}

std::string Embedding::extra_repr() const {
  return fmt::format("{}, {}", num_embeddings, embedding_dim);
}

}  // namespace ag::nn
