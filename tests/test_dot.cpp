// Graphviz export: the structure of the text (boxes, ellipses, arrows), not its
// exact layout; node ids are global counters, so tests look for patterns.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;

namespace {

int64_t count(const std::string& text, const std::string& pattern) {
  int64_t n = 0;
  for (size_t at = text.find(pattern); at != std::string::npos; at = text.find(pattern, at + 1))
    ++n;
  return n;
}

// d = a * b + a, every tensor named.
struct SmallGraph {
  Tensor a = tensor({1.5, 2}).set_name("a").requires_grad_();
  Tensor b = tensor({3, 4}).set_name("b");
  Tensor c = (a * b).set_name("c");
  Tensor d = (c + a).set_name("d");
};

}  // namespace

TEST_CASE("dot: one box per tensor, one ellipse per op") {
  SmallGraph g;
  std::string dot = to_dot(g.d);
  CHECK(dot.rfind("digraph attograd {\n  rankdir=LR;\n", 0) == 0);
  CHECK(dot.substr(dot.size() - 2) == "}\n");
  CHECK(count(dot, "shape=record") == 4);  // a, b, c, d: a is used twice, drawn once
  CHECK(count(dot, "shape=ellipse") == 2);
  CHECK(count(dot, "label=\"MulBackward\\n#") == 1);
  CHECK(count(dot, "label=\"AddBackward\\n#") == 1);
  // Arrows: a, b -> Mul -> c;  c, a -> Add -> d.
  CHECK(count(dot, " -> ") == 6);
  CHECK(dot.find("label=\"{ d | (2) | data [6, 10] }\"") != std::string::npos);
}

TEST_CASE("dot: edges go from inputs to the op and from the op to its output") {
  Tensor a = tensor({2}).requires_grad_();
  Tensor b = a * a;  // one input used twice: two arrows
  std::string dot = to_dot(b);
  uint64_t id = b.grad_fn()->id;
  CHECK(dot.find(fmt::format("  op{} -> t0;\n", id)) != std::string::npos);  // t0: the root
  CHECK(count(dot, fmt::format("  t1 -> op{};\n", id)) == 2);
  CHECK(count(dot, "shape=record") == 2);
}

TEST_CASE("dot: data and grad shown for small tensors only") {
  SmallGraph g;
  sum(g.d).backward(Tensor(), /*retain_graph=*/true);  // else a and b are cut off
  std::string dot = to_dot(g.d);
  // a.grad = b + 1 = [4, 5]; b does not require grad, so it has none.
  CHECK(dot.find("{ a | (2) | data [1.5, 2] | grad [4, 5] }") != std::string::npos);
  CHECK(dot.find("{ b | (2) | data [3, 4] }") != std::string::npos);

  Tensor big = ones({2, 4}).set_name("big").requires_grad_();
  Tensor small = sum(big * 0.5, 1);
  std::string big_dot = to_dot(small);
  CHECK(big_dot.find("{ big | (2,4) }") != std::string::npos);
  CHECK(big_dot.find("data [2, 2]") != std::string::npos);
  DotOptions options;
  options.max_values = 8;
  CHECK(to_dot(small, options).find("{ big | (2,4) | data [[1, 1, 1, 1], [1, 1, 1, 1]] }") !=
        std::string::npos);
}

TEST_CASE("dot: unnamed tensors are t<N>, special characters in names escaped") {
  Tensor x = tensor({1}).set_name("x{0}|<in>\"q\"").requires_grad_();
  std::string dot = to_dot(exp(x));
  CHECK(dot.find("t0 [shape=record, label=\"{ t0 | (1) | data [2.718] }\"]") != std::string::npos);
  CHECK(dot.find(R"({ x\{0\}\|\<in\>\"q\" | (1) | data [1] })") != std::string::npos);
}

TEST_CASE("dot: ops freed by backward are marked and have no inputs") {
  Tensor a = tensor({1, 2}).requires_grad_();
  Tensor c = a * 3;
  sum(c).backward();
  std::string dot = to_dot(c);
  CHECK(count(dot, "MulBackward\\n#") == 1);
  CHECK(count(dot, "(freed)") == 1);
  CHECK(count(dot, " -> ") == 1);  // only op -> c
  CHECK(count(dot, "shape=record") == 1);
}

TEST_CASE("dot: a leaf alone is one box") {
  std::string dot = to_dot(scalar(2.5));
  CHECK(dot ==
        "digraph attograd {\n  rankdir=LR;\n"
        "  t0 [shape=record, label=\"{ t0 | () | data 2.5 }\"];\n}\n");
}

TEST_CASE("dot: a 100,000-op chain exports without recursion") {
  Tensor x = tensor({1}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y + 1;
  std::string dot = to_dot(y);
  CHECK(count(dot, "shape=ellipse") == 100000);
  CHECK(count(dot, "shape=record") == 100001);
  CHECK(count(dot, " -> ") == 200000);
  // backward() frees the chain node by node; dropping y with the chain intact
  // would destroy it recursively, one stack frame set per op.
  y.backward();
}

TEST_CASE("dot: write_dot writes the file, or names the path it cannot write") {
  Tensor a = tensor({1, 2}).requires_grad_();
  Tensor c = a * 2;
  std::string path = "/tmp/attograd_test_dot.dot";
  write_dot(c, path);
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  CHECK(text.str() == to_dot(c));
  std::remove(path.c_str());

  check_error([&] { write_dot(c, "/nonexistent-dir/graph.dot"); },
              {"write_dot", "/nonexistent-dir/graph.dot", "No such file or directory"});
  check_error([&] { to_dot(Tensor()); }, {"to_dot", "undefined"});
}
