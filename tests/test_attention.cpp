// Scaled dot-product attention [F1.1, F1.3, F2.1, F2.3, F2.4, F2.5, F3.4] and
// its masks [F4.8]: values by hand, masks that zero exactly, causality, and
// gradcheck with and without masks (double flavor).
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_gradients;
using ag::testing::check_shape;
using ag::testing::check_values;

namespace {

Tensor leaf(const Shape& shape, Generator& gen) {
  Tensor t = randn(shape, gen);
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("attention/sdpa [F1.1] [F1.3] [F2.1] [F3.4]: softmax(QK^T / sqrt(d_k)) V by hand") {
  // One query, two keys, d_k = 4: q.k = (2, 0), scaled by 1/sqrt(4) = (1, 0).
  Tensor q = tensor({{1, 1, 0, 0}});
  Tensor k = tensor({{1, 1, 0, 0}, {0, 0, 1, 1}});
  Tensor v = tensor({{10, 0}, {0, 10}});
  auto [out, weights] = nn::scaled_dot_product_attention(q, k, v);
  const double e = std::exp(1.0), w0 = e / (e + 1), w1 = 1 / (e + 1);
  check_shape(weights, {1, 2});
  check_values(weights, {w0, w1});
  check_values(out, {10 * w0, 10 * w1});
}

TEST_CASE(
    "attention/sdpa [F2.3] [F2.4] [F2.5]: A_ij = v_i^T W_Q^T W_K v_j / sqrt(d_k), row by row") {
  Generator gen(1);
  const int64_t T = 4, d = 3;
  Tensor x = randn({T, d}, gen), w_q = randn({d, d}, gen), w_k = randn({d, d}, gen),
         w_v = randn({d, d}, gen);
  // [F2.2] in the seed's column convention q_i = W_Q x_i, i.e. Q = X W_Q^T.
  Tensor q = matmul(x, transpose(w_q, 0, 1)), k = matmul(x, transpose(w_k, 0, 1)),
         v = matmul(x, transpose(w_v, 0, 1));
  auto [out, weights] = nn::scaled_dot_product_attention(q, k, v);
  for (int64_t i = 0; i < T; ++i) {
    // [F2.3] the score as a bilinear form of two inputs, then [F2.4] its softmax.
    std::vector<double> a(T);
    double z = 0;
    for (int64_t j = 0; j < T; ++j) {
      double bilinear = 0;  // x_i^T W_Q^T W_K x_j = sum_{r,s,t} x_i[r] W_Q[s][r] W_K[s][t] x_j[t]
      for (int64_t r = 0; r < d; ++r)
        for (int64_t s = 0; s < d; ++s)
          for (int64_t t = 0; t < d; ++t)
            bilinear += double(x.at({i, r})) * w_q.at({s, r}) * w_k.at({s, t}) * x.at({j, t});
      a[j] = std::exp(bilinear / std::sqrt(double(d)));
      z += a[j];
    }
    for (int64_t j = 0; j < T; ++j)
      CHECK(weights.at({i, j}) ==
            doctest::Approx(a[j] / z).epsilon(testing::is_double ? 1e-12 : 1e-4));
    // [F2.5] O_i = sum_j H_ij V_j
    for (int64_t c = 0; c < d; ++c) {
      double o = 0;
      for (int64_t j = 0; j < T; ++j) o += a[j] / z * v.at({j, c});
      CHECK(out.at({i, c}) == doctest::Approx(o).epsilon(testing::is_double ? 1e-12 : 1e-4));
    }
  }
}

TEST_CASE("attention/sdpa: any leading batch dims") {
  Generator gen(2);
  Tensor q = randn({2, 3, 5, 4}, gen), k = randn({2, 3, 6, 4}, gen), v = randn({2, 3, 6, 7}, gen);
  auto [out, weights] = nn::scaled_dot_product_attention(q, k, v);
  check_shape(out, {2, 3, 5, 7});
  check_shape(weights, {2, 3, 5, 6});
  Tensor row_sums = sum(weights, -1);
  check_values(row_sums, std::vector<double>(30, 1.0));
}

TEST_CASE("attention/masks [F4.8]: causal = 1 - band_part(ones, -1, 0); padding; combined by max") {
  check_values(nn::causal_mask(3), {0, 1, 1, 0, 0, 1, 0, 0, 0});
  Tensor by_length = nn::padding_mask(std::vector<int64_t>{3, 1}, 3);
  check_shape(by_length, {2, 1, 3});
  check_values(by_length, {0, 0, 0, 0, 1, 1});
  Tensor by_token = nn::padding_mask(tensor({{5, 7, 0}, {4, 0, 0}}), /*pad_id=*/0);
  check_shape(by_token, {2, 1, 3});
  check_values(by_token, {0, 0, 1, 0, 1, 1});
  Tensor both = nn::combine_masks(by_token, nn::causal_mask(3));  // (2,1,3) with (3,3) -> (2,3,3)
  check_shape(both, {2, 3, 3});
  check_values(both, {0, 1, 1, 0, 0, 1, 0, 0, 1,  //
                      0, 1, 1, 0, 1, 1, 0, 1, 1});
}

TEST_CASE(
    "attention/sdpa [F4.8]: blocked keys get weight exactly 0; a fully blocked row is zeros") {
  Generator gen(3);
  Tensor q = leaf({2, 3, 4}, gen), k = leaf({2, 3, 4}, gen), v = leaf({2, 3, 2}, gen);
  // Sequence 1 has length 0: every key blocked, so every query's row is blocked.
  Tensor mask = nn::padding_mask(std::vector<int64_t>{2, 0}, 3);
  auto [out, weights] = nn::scaled_dot_product_attention(q, k, v, mask);
  for (int64_t i = 0; i < 3; ++i) {
    CHECK(weights.at({0, i, 2}) == 0);  // exactly, not merely small
    CHECK(weights.at({0, i, 0}) + weights.at({0, i, 1}) == doctest::Approx(1));
    for (int64_t j = 0; j < 3; ++j) CHECK(weights.at({1, i, j}) == 0);
    for (int64_t c = 0; c < 2; ++c) CHECK(out.at({1, i, c}) == 0);
  }
  sum(out).backward();
  for (const Tensor* t : {&q, &k, &v})
    for (real g : t->grad().to_vector()) CHECK(std::isfinite(g));
}

TEST_CASE(
    "attention/sdpa [F4.8]: with the causal mask, a later token never changes an earlier output") {
  Generator gen(4);
  const int64_t T = 5;
  Tensor x = randn({T, 3}, gen);
  auto self_attend = [&](const Tensor& input) {
    return nn::scaled_dot_product_attention(input, input, input, nn::causal_mask(T)).context;
  };
  Tensor before = self_attend(x);
  Tensor changed = x.clone();
  changed.data()[3 * 3 + 1] += 5;  // token 3
  Tensor after = self_attend(changed);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 3; ++c) CHECK(after.at({i, c}) == before.at({i, c}));
  CHECK(after.at({3, 1}) != before.at({3, 1}));
}

TEST_CASE("attention/sdpa: errors name the shapes") {
  check_error(
      [] {
        (void)nn::scaled_dot_product_attention(zeros({2, 4}), zeros({3, 5}), zeros({3, 2}));
      },
      {"scaled_dot_product_attention:", "(2,4)", "(3,5)", "d_k"});
  check_error(
      [] {
        (void)nn::scaled_dot_product_attention(zeros({2, 4}), zeros({3, 4}), zeros({2, 2}));
      },
      {"scaled_dot_product_attention:", "(3,4)", "(2,2)", "number of keys"});
  check_error(
      [] {
        (void)nn::scaled_dot_product_attention(zeros({2, 4}), zeros({3, 4}), zeros({3, 2}),
                                               zeros({4, 4}));
      },
      {"masked_fill"});
  check_error([] { (void)nn::padding_mask(std::vector<int64_t>{4}, 3); },
              {"padding_mask:", "length 4", "0..3"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "attention/sdpa [F1.1] [F2.1] [F3.4] [F4.8]: gradcheck w.r.t. Q, K, V, with and without "
    "masks") {
  Generator gen(5);
  Tensor q = leaf({2, 3, 4}, gen), k = leaf({2, 5, 4}, gen), v = leaf({2, 5, 3}, gen);
  auto attend = [](const Tensor& mask) {
    return [mask](const std::vector<Tensor>& in) {
      auto result = nn::scaled_dot_product_attention(in[0], in[1], in[2], mask);
      return concat({reshape(result.context, {-1}), reshape(result.weights, {-1})}, 0);
    };
  };
  check_gradients(attend(Tensor()), {q, k, v});
  check_gradients(attend(nn::padding_mask(std::vector<int64_t>{5, 2}, 5)), {q, k, v});
  check_gradients(attend(nn::padding_mask(std::vector<int64_t>{0, 3}, 5)), {q, k, v});
  Tensor square = leaf({2, 4, 4}, gen);
  check_gradients(
      [](const std::vector<Tensor>& in) {
        return nn::scaled_dot_product_attention(in[0], in[0], in[0], nn::causal_mask(4)).context;
      },
      {square});
}
#endif
