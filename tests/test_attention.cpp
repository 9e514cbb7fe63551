// Scaled dot-product attention [F1.1, F1.3, F2.1, F2.3, F2.4, F2.5, F3.4] and
// its masks [F4.8]: values by hand, masks that zero exactly, causality, and
// gradcheck with and without masks (double flavor).
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using namespace ag::testing;

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

TEST_CASE("attention/sdpa [F1.1]: queries from the decoder, keys and values from the encoder") {
  // Seed 001 calls Q the encoder output, K the decoder output and V the
  // attention weights. The roles are: Q asks (one row per decoder step), K
  // and V answer (one row per encoder position). With 2 decoder steps and 3
  // encoder positions the result is one context per DECODER step, a mix of
  // the encoder's value rows with weights over the 3 ENCODER positions.
  Tensor decoder = tensor({{1, 0}, {0, 1}});          // (Tq=2, d=2)
  Tensor encoder = tensor({{2, 0}, {0, 2}, {1, 1}});  // (Tk=3, d=2)
  auto [context, weights] = nn::scaled_dot_product_attention(decoder, encoder, encoder);
  check_shape(context, {2, 2});
  check_shape(weights, {2, 3});
  // Query 0 = (1,0): scores (2, 0, 1)/sqrt(2); query 1 = (0,1): (0, 2, 1)/sqrt(2).
  const double r = std::sqrt(2.0);
  const double z = std::exp(2 / r) + 1 + std::exp(1 / r);
  check_values(weights, {std::exp(2 / r) / z, 1 / z, std::exp(1 / r) / z,  //
                         1 / z, std::exp(2 / r) / z, std::exp(1 / r) / z});
  check_values(context, {(2 * std::exp(2 / r) + std::exp(1 / r)) / z, (2 + std::exp(1 / r)) / z,
                         (2 + std::exp(1 / r)) / z, (2 * std::exp(2 / r) + std::exp(1 / r)) / z});
  // Taking the seed's roles literally (queries from the encoder) answers a
  // different question: one row per ENCODER position.
  check_shape(nn::scaled_dot_product_attention(encoder, decoder, decoder).context, {3, 2});
}

TEST_CASE("attention/sdpa [F1.8]: the seed's worked example, Q (2,3), K (3,2), scale 1/sqrt(3)") {
  // Seed 001 section 4.4: Q = [[1,2,3],[4,5,6]], K = [[7,8],[9,10],[11,12]],
  // "Score = Q'K^T = [[64,72],[128,152]]" with Q' = Q/sqrt(3). K is (3,2): its
  // COLUMNS are the two keys, so the product meant is Q K, (2,3)(3,2):
  //   Q K = [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]]
  //       = [[58, 64], [139, 154]]
  // and the scaled scores Q K / sqrt(3). The seed's numbers are neither: its
  // sums (28+36, ...) match no entry, and no 1/sqrt(3) is applied.
  Tensor q = tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor k_columns = tensor({{7, 8}, {9, 10}, {11, 12}});
  check_values(matmul(q, k_columns), {58, 64, 139, 154});
  Tensor keys = transpose(k_columns, 0, 1);  // the two keys as rows (Tk=2, d_k=3)
  Tensor values = tensor({{1, 0}, {0, 1}});  // V = I: the output shows the weights
  auto [out, weights] = nn::scaled_dot_product_attention(q, keys, values);
  const double s3 = std::sqrt(3.0);
  // scores 58/sqrt(3) = 33.486, 64/sqrt(3) = 36.950; 139/sqrt(3) = 80.252, 154/sqrt(3) = 88.912
  const double w00 = 1 / (1 + std::exp((64 - 58) / s3)), w10 = 1 / (1 + std::exp((154 - 139) / s3));
  check_values(weights, {w00, 1 - w00, w10, 1 - w10}, testing::is_double ? 1e-12 : 1e-5);
  CHECK(weights.at({0, 0}) == doctest::Approx(0.0303511).epsilon(1e-5));
  CHECK(weights.at({1, 0}) == doctest::Approx(0.000173310).epsilon(1e-4));
  CHECK(out.to_vector() == weights.to_vector());  // V = I: each output row is its weights
  // The seed's softmax of [[64,72],[128,152]] gives 0.000335 and 3.8e-11 on
  // the first key: far more saturated than the true weights 0.0304 and 0.000173.
  Tensor seed_weights = softmax(tensor({{64, 72}, {128, 152}}), -1);
  CHECK(seed_weights.at({0, 0}) == doctest::Approx(0.000335350).epsilon(1e-4));
  CHECK(seed_weights.at({0, 0}) < weights.at({0, 0}) / 50);
}

TEST_CASE(
    "attention/sdpa [F2.7] [F2.2]: the four tokens of the seed's sentence, W_Q = W_K = W_V = I") {
  // Seed 002 section 4.3: embeddings of the 4 tokens of the sentence
  // "wo / feichang / xihuan / biancheng" (I / very much / like / programming).
  Tensor x = tensor({{0.1, 0.2, 0.3}, {0.4, 0.5, 0.6}, {0.7, 0.8, 0.9}, {1.0, 1.1, 1.2}});
  // [F2.2] Q = X W_Q, K = X W_K, V = X W_V with identity projections: Q = K = V = X.
  auto [o, h] = nn::scaled_dot_product_attention(x, x, x);
  const double tolerance = testing::is_double ? 1e-12 : 1e-5;
  // A = X X^T / sqrt(3), then H = softmax over each row, O = H X (values from
  // an independent double-precision computation).
  Tensor a = matmul(x, transpose(x, 0, 1)) / std::sqrt(real(3));
  check_values(a,
               {0.08082903768654762, 0.18475208614068026, 0.2886751345948129, 0.39259818304894556,
                0.18475208614068026, 0.44455970727601185, 0.7043673284113434, 0.964174949546675,
                0.2886751345948129, 0.7043673284113434, 1.1200595222278742, 1.5357517160444047,
                0.39259818304894556, 0.964174949546675, 1.5357517160444047, 2.107328482542134},
               tolerance);
  check_values(h,
               {0.21247761557424943, 0.23574711709746007, 0.26156497977238685, 0.2902102875559036,
                0.1623831393428758, 0.21055906796996804, 0.2730278604280891, 0.35402993225906715,
                0.12059715979215899, 0.18275526849472545, 0.27695086866175744, 0.41969670305135803,
                0.087238120570574, 0.15450371855905448, 0.27363495330305765, 0.4846232075673139},
               tolerance);
  check_values(o,
               {0.5888523817929834, 0.6888523817929835, 0.7888523817929833, 0.6456113756810042,
                0.7456113756810043, 0.8456113756810043, 0.6987241344916943, 0.7987241344916943,
                0.8987241344916943, 0.7466929743601334, 0.8466929743601335, 0.9466929743601336},
               tolerance);
  // The seed's A = [0.04, 0.10, 0.28, 0.58], H = [0.16, 0.25, 0.42, 0.17] and
  // O = [0.048, 0.150, 0.378, 0.290] are not consistent with each other: the
  // softmax of its A is not its H ...
  Tensor seed_a_softmax = softmax(tensor({0.04, 0.10, 0.28, 0.58}), -1);
  check_values(seed_a_softmax,
               {0.19805539080627022, 0.2103024521984215, 0.25177774727904473, 0.3398644097162636},
               testing::is_double ? 1e-12 : 1e-5);
  CHECK(std::abs(seed_a_softmax.at({3}) - 0.17) > 0.15);
  // ... and its O is H_i times V_i elementwise (0.16*0.3 = 0.048, 0.25*0.6, 0.42*0.9),
  // not the weighted sum sum_j H_ij V_j, and its last entry (0.17*1.2 = 0.204) is 0.290.
  Tensor seed_elementwise = tensor({0.16, 0.25, 0.42, 0.17}) * tensor({0.3, 0.6, 0.9, 1.2});
  check_values(seed_elementwise, {0.048, 0.15, 0.378, 0.204}, 1e-6);
}

TEST_CASE("attention/sdpa [F1.6]: var(q.k) grows like d_k; dividing by sqrt(d_k) keeps it near 1") {
  // q and k with independent N(0,1) entries: q.k is a sum of d_k products of
  // variance 1, so var(q.k) = d_k, and var(q.k / sqrt(d_k)) = 1. Scaling does
  // not change the cost (still d_k multiplications per score, seed 001 claims
  // O(d_k^2) -> O(d_k)); it keeps the softmax out of saturation.
  Generator gen(11);
  const int64_t n = 4000;
  for (int64_t d_k : {4, 16, 64, 256}) {
    Tensor q = randn({n, 1, d_k}, gen), k = randn({n, 1, d_k}, gen);
    Tensor dot = reshape(matmul(q, transpose(k, -2, -1)), {n});  // (n) scores q.k
    auto variance = [&](const Tensor& t) {
      Tensor centred = t - mean(t);
      return double(mean(centred * centred).item());
    };
    const double raw = variance(dot), scaled = variance(dot / std::sqrt(real(d_k)));
    INFO("d_k " << d_k << ": var(q.k) " << raw << ", var(q.k/sqrt(d_k)) " << scaled);
    CHECK(raw / double(d_k) == doctest::Approx(1).epsilon(0.1));  // 4000 samples: within 10%
    CHECK(scaled == doctest::Approx(1).epsilon(0.1));
  }
  // Saturation: with 8 keys and d_k = 256, unscaled scores put almost all the
  // weight on one key; scaled ones do not.
  Tensor q = randn({200, 1, 256}, gen), k = randn({200, 8, 256}, gen);
  Tensor raw_scores = matmul(q, transpose(k, -2, -1));
  const double raw_max = double(mean(max(softmax(raw_scores, -1), -1)).item());
  const double scaled_max = double(mean(max(softmax(raw_scores / real(16), -1), -1)).item());
  INFO("mean largest weight: unscaled " << raw_max << ", scaled " << scaled_max);
  CHECK(raw_max > 0.85);
  CHECK(scaled_max < 0.7);
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
      {"scaled_dot_product_attention: mask (4,4)", "scores (..., Tq, Tk) = (2,3)"});
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
