// Multi-head attention [F0.8-F0.10, F2.2, F2.6, F3.2]: shapes and parameter
// names, the split into heads, the heads one by one against the fused
// computation, masks over the heads, errors, and gradcheck (double flavor)
// with respect to the inputs and every parameter.
#include <doctest/doctest.h>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

// Rows [start, start+n) of a Linear's weight (out, in) and bias: the part of
// the projection that feeds one head.
Tensor rows(const Tensor& t, int64_t start, int64_t n) { return narrow(t, 0, start, n); }

}  // namespace

// --- MultiHeadAttention -------------------------------------------------------------------

TEST_CASE("layers/multi_head_attention [F2.6] [F3.2]: shapes, parameter names, summary") {
  manual_seed(1);
  nn::MultiHeadAttention mha(8, 2);
  Generator gen(1);
  Tensor x = randn({3, 5, 8}, gen), memory = randn({3, 7, 8}, gen);
  auto [out, weights] = mha.forward(x, memory, memory);
  check_shape(out, {3, 5, 8});
  check_shape(weights, {3, 2, 5, 7});
  check_values(sum(weights, -1), std::vector<double>(30, 1.0));
  std::vector<std::string> names;
  for (const auto& [name, p] : mha.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight",
                                          "k_proj.bias", "v_proj.weight", "v_proj.bias",
                                          "out_proj.weight", "out_proj.bias"});
  // As PyTorch prints a module with children: the settings on their own line.
  CHECK(mha.to_string() ==
        "MultiHeadAttention(\n"
        "  d_model=8, heads=2, head_dim=4, bias=true\n"
        "  (q_proj): Linear(in_features=8, out_features=8, bias=true)  weight (8,8)  bias (8)\n"
        "  (k_proj): Linear(in_features=8, out_features=8, bias=true)  weight (8,8)  bias (8)\n"
        "  (v_proj): Linear(in_features=8, out_features=8, bias=true)  weight (8,8)  bias (8)\n"
        "  (out_proj): Linear(in_features=8, out_features=8, bias=true)  weight (8,8)  bias (8)\n"
        ")\n"
        "parameters: 288");
  CHECK(nn::MultiHeadAttention(8, 4, /*bias=*/false).num_parameters() == 4 * 8 * 8);
}

TEST_CASE(
    "layers/multi_head_attention [F0.8]: the features are split into heads, not the time steps") {
  // x (1,2,4), 2 heads of 2 features: head 0 gets features 0,1 of EVERY
  // position, head 1 features 2,3.
  Tensor x = tensor({{{0, 1, 2, 3}, {4, 5, 6, 7}}});
  Tensor heads = nn::split_heads(x, 2);
  check_shape(heads, {1, 2, 2, 2});
  check_values(heads, {0, 1, 4, 5, 2, 3, 6, 7});
  check_values(nn::merge_heads(heads), {0, 1, 2, 3, 4, 5, 6, 7});
  check_error([&] { (void)nn::split_heads(x, 3); }, {"split_heads:", "(1,2,4)", "heads = 3"});
  check_error([&] { (void)nn::merge_heads(x); }, {"merge_heads:", "(1,2,4)", "(B,h,T,d_h)"});
}

TEST_CASE(
    "layers/multi_head_attention [F0.9] [F0.10] [F2.2]: the heads one by one, concatenated, "
    "equal the fused computation") {
  manual_seed(2);
  const int64_t d = 6, h = 3, d_h = 2;
  nn::MultiHeadAttention mha(d, h);
  Generator gen(2);
  Tensor x = randn({2, 4, d}, gen), memory = randn({2, 5, d}, gen);
  Tensor mask = nn::padding_mask(std::vector<int64_t>{5, 3}, 5);  // (2,1,5)
  auto [fused, fused_weights] = mha.forward(x, memory, memory, mask);

  std::vector<Tensor> contexts;
  for (int64_t k = 0; k < h; ++k) {
    // [F2.2] head k's projections are rows k*d_h .. (k+1)*d_h - 1 of W_Q, W_K, W_V
    Tensor q =
        nn::linear(x, rows(mha.q_proj->weight, k * d_h, d_h), rows(mha.q_proj->bias, k * d_h, d_h));
    Tensor key = nn::linear(memory, rows(mha.k_proj->weight, k * d_h, d_h),
                            rows(mha.k_proj->bias, k * d_h, d_h));
    Tensor value = nn::linear(memory, rows(mha.v_proj->weight, k * d_h, d_h),
                              rows(mha.v_proj->bias, k * d_h, d_h));
    // [F0.9] c_k = sum_i a_ki v_i, with d_k = d_h
    auto [c_k, a_k] = nn::scaled_dot_product_attention(q, key, value, mask);
    Tensor fused_a_k = reshape(narrow(fused_weights, 1, k, 1), {2, 4, 5});
    CHECK(max_abs_diff(a_k, fused_a_k) < 1e-6);
    contexts.push_back(c_k);
  }
  // [F0.10] c = W_c [c_1; c_2; c_3] + b_c
  Tensor one_by_one = mha.out_proj->forward(cat(contexts, -1));
  CHECK(max_abs_diff(one_by_one, fused) < (testing::is_double ? 1e-12 : 1e-5));
}

TEST_CASE(
    "layers/multi_head_attention [F4.8]: masks broadcast over the heads; blocked weights are "
    "exactly 0") {
  manual_seed(3);
  nn::MultiHeadAttention mha(8, 4);
  Generator gen(3);
  Tensor x = randn({2, 4, 8}, gen);
  // Padding (B,1,T): sequence 1 has 2 real tokens. Combined with the causal mask: (B,T,T).
  Tensor mask =
      nn::combine_masks(nn::padding_mask(std::vector<int64_t>{4, 2}, 4), nn::causal_mask(4));
  auto [out, weights] = mha.forward(x, mask);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t head = 0; head < 4; ++head)
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          const bool blocked = j > i || (b == 1 && j >= 2);
          if (blocked) CHECK(weights.at({b, head, i, j}) == 0);
          if (!blocked) CHECK(weights.at({b, head, i, j}) > 0);
        }
  // A 4-D mask is used as given.
  Tensor mask4 = reshape(nn::causal_mask(4), {1, 1, 4, 4});
  CHECK(max_abs_diff(mha.forward(x, mask4).weights, mha.forward(x, nn::causal_mask(4)).weights) ==
        0);
}

TEST_CASE("layers/multi_head_attention: errors name the shapes") {
  check_error([] { nn::MultiHeadAttention(6, 4); },
              {"MultiHeadAttention:", "d_model = 6", "heads = 4"});
  nn::MultiHeadAttention mha(4, 2);
  check_error(
      [&] {
        (void)mha.forward(zeros({2, 3, 5}));
      },
      {"MultiHeadAttention:", "query", "(2,3,5)", "d_model = 4"});
  check_error([&] { (void)mha.forward(zeros({3, 4})); }, {"MultiHeadAttention:", "(3,4)"});
  check_error(
      [&] {
        (void)mha.forward(zeros({2, 3, 4}), zeros({1, 5, 4}), zeros({1, 5, 4}));
      },
      {"MultiHeadAttention:", "(2,3,4)", "(1,5,4)", "batch size"});
  // A mask that does not fit the scores, or would enlarge them, is rejected
  // here, with the scores' shape, not deep inside masked_fill.
  check_error(
      [&] {
        (void)mha.forward(zeros({1, 5, 4}), zeros({3, 3}));
      },
      {"MultiHeadAttention:", "mask (3,3)", "(B,Tq,Tk) = (1,5,5)"});
  check_error(
      [&] {
        (void)mha.forward(zeros({1, 5, 4}), zeros({2, 5, 5}));
      },
      {"MultiHeadAttention:", "mask (2,5,5)", "(1,5,5)"});
  CHECK_NOTHROW((void)mha.forward(zeros({1, 5, 4}), nn::causal_mask(5)));
  CHECK_NOTHROW((void)mha.forward(zeros({1, 5, 4}), zeros({1, 2, 5, 5})));
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "layers/multi_head_attention [F0.8] [F0.9] [F0.10] [F2.6]: gradcheck w.r.t. the inputs and "
    "every parameter, with and without a mask") {
  manual_seed(4);
  nn::MultiHeadAttention mha(4, 2);
  Generator gen(4);
  Tensor x = leaf({2, 3, 4}, gen), memory = leaf({2, 5, 4}, gen);
  Tensor mask = nn::padding_mask(std::vector<int64_t>{5, 2}, 5);
  for (const Tensor& m : {Tensor(), mask}) {
    check_gradients(
        [&](const std::vector<Tensor>& in) {
          auto r = mha.forward(in[0], in[1], in[1], m);
          return cat({reshape(r.context, {-1}), reshape(r.weights, {-1})}, 0);
        },
        {x, memory});
    check_module_gradients(mha, [&] { return mha.forward(x, memory, memory, m).context; });
  }
  Tensor square = leaf({2, 4, 4}, gen);
  check_gradients(
      [&](const std::vector<Tensor>& in) { return mha.forward(in[0], nn::causal_mask(4)).context; },
      {square});
}
#endif
