// Chapter 1: tensors and reverse-mode autograd.
//
// A tensor is a shape plus a row-major buffer of numbers. Every op on tensors
// that require grad records a node (its grad_fn); backward() walks those nodes
// from the result back to the leaves, applying the chain rule once per node.
// This chapter builds one neuron by hand, checks its gradients against the
// chain rule done on paper and against finite differences, draws its graph,
// and ends with the same computation as a module.
//
// Target: every gradient agrees with finite differences (gradcheck).
// Text: docs/tutorials/01-tensors-autograd.md
// make debug-01 breaks in: ag::nn::Linear::forward
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using ag::tutorial::save_model;
using ag::tutorial::section;

namespace {

// gradcheck compares backward() with (L(x+eps) - L(x-eps)) / 2eps. This build
// computes in float (about 7 significant digits): L(x+eps) and L(x-eps) each
// carry a rounding error near 1e-7 |L|, which the division by 2eps magnifies,
// so eps must be far larger and the tolerance far looser than in double.
GradcheckOptions float_tolerances() {
  GradcheckOptions options;
  options.eps = 1e-3;
  options.rtol = 1e-2;
  options.atol = 1e-4;
  return options;
}

int checks_run = 0, checks_failed = 0;

void report(const char* what, const GradcheckResult& result) {
  ++checks_run;
  if (!result.ok) ++checks_failed;
  fmt::print("  {:<40} {}\n", what, result.ok ? "ok" : "FAILED");
  fmt::print("    {}\n", result.message);
}

// A value computed by backward() next to the one worked out on paper.
void compare(const char* name, const Tensor& t, double by_hand) {
  const double grad = t.grad().item();
  const bool ok = std::abs(grad - by_hand) < 1e-4;
  ++checks_run;
  if (!ok) ++checks_failed;
  fmt::print("  {:<6} data {:>8.4f}   grad {:>8.4f}   by hand {:>8.4f}  {}\n", name, t.item(), grad,
             by_hand, ok ? "ok" : "DIFFERENT");
}

}  // namespace

int main() {
  manual_seed(0);  // every random draw below is the same on every run

  section("1. Tensors");
  // Shape (2,3): 2 rows of 3; stored as 6 numbers, row after row.
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}}).set_name("a");
  Tensor b = tensor({10, 20, 30}).set_name("b");
  fmt::print("{}\n{}\na.shape() = {}, a.numel() = {}\n", a, b, shape_str(a.shape()), a.numel());
  // Broadcasting, as NumPy: b (3) is aligned at the right with a (2,3) and
  // repeated over the rows, so a + b is (2,3).
  fmt::print("a + b:\n{}\n", a + b);
  fmt::print("sum(a, /*dim=*/1): {}\n", sum(a, 1));
  // matmul: (2,3) x (3,2) -> (2,2); the inner sizes must agree.
  fmt::print("matmul(a, transpose(a, 0, 1)):\n{}\n", matmul(a, transpose(a, 0, 1)));
  Tensor r = randn({2, 4}).set_name("r");  // drawn from the default generator, seed 0
  fmt::print("{}\n", r);

  section("2. A neuron by hand");
  // o = tanh(x1 w1 + x2 w2 + b): two inputs, two weights and a bias, each a
  // 0-dim tensor. requires_grad_() marks the leaves we want gradients for.
  Tensor x1 = scalar(2.0).requires_grad_().set_name("x1");
  Tensor x2 = scalar(0.0).requires_grad_().set_name("x2");
  Tensor w1 = scalar(-3.0).requires_grad_().set_name("w1");
  Tensor w2 = scalar(1.0).requires_grad_().set_name("w2");
  // This bias makes n = 0.8814 = atanh(1/sqrt(2)), so o = 1/sqrt(2) and
  // do/dn = 1 - o^2 = 0.5 exactly: easy numbers to check by hand.
  Tensor bias = scalar(6.8813735870195432).requires_grad_().set_name("b");
  Tensor x1w1 = (x1 * w1).set_name("x1*w1");
  Tensor x2w2 = (x2 * w2).set_name("x2*w2");
  Tensor n = (x1w1 + x2w2 + bias).set_name("n");
  Tensor o = tanh(n).set_name("o");
  // Every op's result remembers the op that made it (grad_fn); leaves say
  // requires_grad=True instead.
  fmt::print("{}\n{}\n{}\n", x1, n, o);

  // Intermediate results keep no .grad unless asked (as in PyTorch).
  for (Tensor* t : {&x1w1, &x2w2, &n}) t->retain_grad();
  // retain_graph keeps the saved values so the picture below can show them.
  o.backward(Tensor(), /*retain_graph=*/true);

  // The chain rule on paper, from the output back:
  //   do/dn  = 1 - tanh(n)^2 = 1 - o^2 = 0.5
  //   n = x1w1 + x2w2 + b  =>  do/d(x1w1) = do/d(x2w2) = do/db = do/dn
  //   x1w1 = x1 * w1       =>  do/dx1 = w1 do/dn,   do/dw1 = x1 do/dn
  const double dn = 1 - o.item() * o.item();
  fmt::print("o = {:.4f}; backward() gave:\n", o.item());
  compare("n", n, dn);
  compare("b", bias, dn);
  compare("x1", x1, w1.item() * dn);
  compare("w1", w1, x1.item() * dn);
  compare("x2", x2, w2.item() * dn);
  compare("w2", w2, x2.item() * dn);  // x2 = 0: w2 has no effect on o here

  section("3. The graph");
  // One box per tensor (name, shape, data, grad) and one oval per op.
  const std::string dot_path = "build/tutorials/01_neuron.dot";
  std::filesystem::create_directories("build/tutorials");
  write_dot(o, dot_path);
  fmt::print("wrote {} ({} ops: 2 mul, 2 add, 1 tanh)\n", dot_path, 5);
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    const std::string svg_path = "build/tutorials/01_neuron.svg";
    const int rc = std::system(("dot -Tsvg " + dot_path + " -o " + svg_path).c_str());
    fmt::print("{} {}\n", rc == 0 ? "rendered" : "could not render", svg_path);
  } else {
    fmt::print(
        "Graphviz's dot is not on PATH: install graphviz and run\n"
        "  dot -Tsvg {} -o build/tutorials/01_neuron.svg\n",
        dot_path);
  }
  // The first lines of the file: a box for o, the oval of the op that made it.
  const std::string dot_text = to_dot(o);
  size_t cut = 0;
  for (int line = 0; line < 5 && cut != std::string::npos; ++line)
    cut = dot_text.find('\n', cut + 1);
  fmt::print("{}\n  ...\n", dot_text.substr(0, cut));

  section("4. Gradients accumulate");
  // A second backward adds to .grad (PyTorch semantics): that is how a tensor
  // used twice gets the sum of both paths. Training clears .grad every step.
  o.backward();
  fmt::print("after a second backward: w1.grad = {:.4f} (twice {:.4f})\n", w1.grad().item(),
             x1.item() * dn);
  for (Tensor* t : {&x1, &x2, &w1, &w2, &bias}) t->set_grad(Tensor());  // zero_grad
  {
    NoGradGuard no_grad;  // evaluation: nothing is recorded
    Tensor o2 = tanh(x1 * w1 + x2 * w2 + bias);
    fmt::print("under NoGradGuard: {} (no grad_fn)\n", o2);
  }

  section("5. Checking gradients with finite differences");
  // gradcheck perturbs every input element by +-eps and compares the change
  // of sum(v * f(x)) (v random) with what backward() says.
  GradcheckOptions tol = float_tolerances();
  fmt::print("float build: eps {}, pass when |analytic - numeric| <= {} + {} |numeric|\n", tol.eps,
             tol.atol, tol.rtol);
  report(
      "neuron o(x1, x2, w1, w2, b)",
      gradcheck([](const std::vector<Tensor>& v) { return tanh(v[0] * v[2] + v[1] * v[3] + v[4]); },
                {x1, x2, w1, w2, bias}, tol));

  // The same neuron for a batch: 4 inputs of 3 features, 2 neurons.
  //   Y = tanh(X W^T + b)     X: (4,3)  W: (2,3)  b: (2) broadcast over rows  ->  Y: (4,2)
  Tensor X = randn({4, 3}).requires_grad_().set_name("X");
  Tensor W = randn({2, 3}).requires_grad_().set_name("W");
  Tensor B = randn({2}).requires_grad_().set_name("b");
  auto layer = [](const std::vector<Tensor>& v) {
    return tanh(matmul(v[0], transpose(v[1], 0, 1)) + v[2]);
  };
  fmt::print("{}\n", layer({X, W, B}));
  report("layer tanh(X W^T + b)", gradcheck(layer, {X, W, B}, tol));

  section("6. The same as a model");
  // nn::Linear holds W (out,in) and b (out) as parameters and computes
  // x W^T + b; nn::Sequential chains modules. Parameters get dotted names.
  auto model = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(4, 1)});
  std::cout << *model << "\n";
  // A regression target for the 4 rows, and the mean squared error to it.
  Tensor target = tensor({{1}, {-1}, {1}, {-1}}).set_name("target");
  Tensor loss = nn::mse_loss(model->forward(X.detach()), target).set_name("loss");
  fmt::print("{}\n", loss);
  loss.backward();
  for (const auto& [name, p] : model->named_parameters())
    fmt::print("  {:<9} {:<6} grad {}\n", name, shape_str(p.shape()), shape_str(p.grad().shape()));
  // The model's gradients, checked: the same computation written with the
  // functional nn::linear, its parameters passed as gradcheck's inputs.
  auto mlp = [x = X.detach(), target](const std::vector<Tensor>& p) {
    return nn::mse_loss(nn::linear(tanh(nn::linear(x, p[0], p[1])), p[2], p[3]), target);
  };
  report("mse_loss(model(X), target) wrt params", gradcheck(mlp, model->parameters(), tol));
  // Untrained (one backward, no step), but a model all the same: its weights by name.
  save_model(*model, "build/tutorials/01_model.safetensors");

  fmt::print(
      "\ngradients agree with the chain rule and finite differences: {}/{} checks "
      "passed (target: all {})\n",
      checks_run - checks_failed, checks_run, checks_run);
  return checks_failed == 0 ? 0 : 1;
}
