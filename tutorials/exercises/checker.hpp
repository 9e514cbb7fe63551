// What every exercise's checker (tutorials/exercises/check/NN_name.cpp) does:
// run the learner's function and the library's reference on the same seeded
// inputs, compare every step and every gradient, and say which tensor is the
// first to differ, with the formula it should compute.
//
//   e          (2,5,1)   match
//   a          (2,5,1)   WRONG   first at [0,0,0]: yours 1, reference 0.000636826 (max |diff| 0.999)
//
// match: the same numbers, bit for bit; close: within 1e-5 + 1e-4 |reference|
// (the same formula with the operations in another order); WRONG: anything else.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// The formula a step computes: its ID in docs/formulas.md (or none) and the
// formula as the exercise states it.
struct Formula {
  std::string id;    // "F0.2", or "" for a step with no ID (a derivative)
  std::string text;  // "a_i = exp(e_i) / sum_j exp(e_j)   over the sequence axis (dim 1)"
};

namespace detail {

// The row of docs/formulas.md for `id`: what attograd computes, and where.
inline std::pair<std::string, std::string> formula_row(const std::string& id) {
  std::ifstream map("docs/formulas.md");
  for (std::string line; std::getline(map, line);) {
    if (line.rfind("| " + id + " |", 0) != 0) continue;
    // | ID | as the seed writes it | what attograd computes | seed, section | code | test |
    std::vector<std::string> cells;
    std::string cell;
    bool in_code = false;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '`') in_code = !in_code;
      if (line[i] == '|' && !in_code && line[i - 1] != '\\') {
        cells.push_back(cell);
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    if (cells.size() < 5) return {};
    std::string computes = cells[2];
    if (computes.size() > 240) computes = computes.substr(0, 237) + "...";
    // "[layers/x.cpp:21](../layers/x.cpp#L21)" -> "layers/x.cpp:21"
    std::string code;
    for (size_t i = 0; i < cells[4].size(); ++i) {
      const size_t close = cells[4][i] == '[' ? cells[4].find("](", i) : std::string::npos;
      const size_t end = close == std::string::npos ? close : cells[4].find(')', close);
      if (end == std::string::npos) {
        code += cells[4][i];
        continue;
      }
      code += cells[4].substr(i + 1, close - i - 1);
      i = end;
    }
    if (code.size() > 200) code = code.substr(0, 197) + "...";
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(' '));
      s.erase(s.find_last_not_of(' ') + 1);
      return s;
    };
    return {trim(computes), trim(code)};
  }
  return {};
}

inline std::string index_str(int64_t flat, const Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  return fmt::format("[{}]", fmt::join(index, ","));
}

}  // namespace detail

class Checker {
 public:
  // number "03", title "point attention's forward [F0.1]-[F0.4]", the learner's
  // file and function, and what the reference is.
  Checker(std::string number, const std::string& title, std::string file,
          const std::string& function, const std::string& reference)
      : number_(std::move(number)), file_(std::move(file)) {
    fmt::print("exercise {}: {}\n", number_, title);
    fmt::print("your code:     {}, {}\n", file_, function);
    fmt::print("the reference: {}, in reference mode\n", reference);
  }

  void inputs(const std::vector<std::pair<std::string, Tensor>>& named) {
    std::vector<std::string> parts;
    for (const auto& [name, t] : named) parts.push_back(name + " " + shape_str(t.shape()));
    fmt::print("inputs (seeded, the same for both): {}\n", fmt::join(parts, ", "));
  }

  void section(const std::string& heading) { fmt::print("\n{}\n", heading); }

  // Runs the learner's code. False when it did not finish: a step still
  // TODO(), or an error; the verdict then says which and where.
  bool run(const std::function<void()>& yours) {
    try {
      yours();
      return true;
    } catch (const NotWritten& todo) {
      if (todo_.empty()) todo_ = todo.where();
    } catch (const Error& e) {
      if (error_.empty()) {
        error_ = e.what();
        error_where_ = e.where();
      }
    } catch (const std::exception& e) {
      if (error_.empty()) error_ = e.what();
    }
    return false;
  }

  // Compares one step (or gradient); `yours` undefined: not computed.
  void compare(const std::string& name, const Tensor& yours, const Tensor& reference,
               const Formula& formula) {
    const std::string shape = shape_str(reference.shape());
    std::string verdict;
    bool bad = true;
    const bool gradient = formula.text.empty();
    if (!yours.defined() && gradient && stopped()) {
      verdict = "--      not checked: your code did not finish";
    } else if (!yours.defined()) {
      verdict = gradient ? "--      none: no gradient reached it" : "--      not computed";
    } else if (yours.shape() != reference.shape()) {
      verdict = fmt::format("WRONG   shape {}, the reference's is {}", shape_str(yours.shape()),
                            shape);
    } else {
      double worst = 0;
      int64_t first = -1;
      bool exact = true;
      for (int64_t i = 0; i < reference.numel(); ++i) {
        const double y = yours.data()[i], r = reference.data()[i];
        const bool same = y == r || (std::isnan(y) && std::isnan(r));
        exact = exact && same;
        if (same) continue;
        const double diff = std::abs(y - r);
        worst = std::isnan(diff) ? INFINITY : std::max(worst, diff);
        if (first < 0 && !(diff <= 1e-5 + 1e-4 * std::abs(r))) first = i;
      }
      if (exact) {
        verdict = "match";
        bad = false;
      } else if (first < 0) {
        verdict = fmt::format("close   max |diff| {:.2g}", worst);
        bad = false;
      } else {
        verdict = fmt::format("WRONG   first at {}: yours {:.6g}, reference {:.6g} (max |diff| {:.3g})",
                              detail::index_str(first, reference.shape()),
                              double(yours.data()[first]), double(reference.data()[first]), worst);
      }
    }
    fmt::print("  {:<12} {:<10} {}\n", name, shape, verdict);
    ++compared_;
    if (bad && first_wrong_.empty()) {
      first_wrong_ = name;
      first_formula_ = formula;
    }
  }

  // Whether a run of the learner's code stopped early (a TODO() or an error).
  bool stopped() const { return !todo_.empty() || !error_.empty(); }

  // Prints the verdict and the hint; returns the exit status (0: pass).
  int verdict(const std::string& gradient_hint = "") {
    const std::string solution = "tutorials/exercises/solutions/" + file_.substr(file_.rfind('/') + 1);
    if (!todo_.empty()) {
      fmt::print(
          "\nverdict: NOT DONE. Your function stops at {},\n"
          "which is still TODO(): write that step (the comment above it gives the formula and\n"
          "the shapes), then run make exercise-{} again.\n",
          todo_, number_);
      return 1;
    }
    if (!error_.empty()) {
      fmt::print("\nverdict: FAIL. Your code raised an error{}:\n  {}\n",
                 error_where_.empty() ? "" : " at " + error_where_, error_);
      hint();
      return 1;
    }
    if (first_wrong_.empty()) {
      fmt::print(
          "\nverdict: PASS. All {} tensors agree with the reference. Compare with the solution:\n"
          "{}\n",
          compared_, solution);
      return 0;
    }
    fmt::print("\nverdict: FAIL. The first tensor that differs is {} (what comes after it is\n"
               "computed from it, so start there).\n", first_wrong_);
    if (!gradient_hint.empty() && first_formula_.text.empty()) fmt::print("{}\n", gradient_hint);
    hint();
    return 1;
  }

 private:
  void hint() {
    const Formula& f = first_formula_;
    if (!f.text.empty())
      fmt::print("hint: {} is {}{}\n", first_wrong_, f.id.empty() ? "" : "[" + f.id + "] ", f.text);
    if (!f.id.empty()) {
      const auto [computes, code] = detail::formula_row(f.id);
      if (!computes.empty())
        fmt::print("  docs/formulas.md, row {}: {}\n  the library computes it at: {}\n", f.id,
                   computes, code);
      else
        fmt::print("  see docs/formulas.md, row {}\n", f.id);
    }
    fmt::print("  stuck? the reference solution: tutorials/exercises/solutions/{} (make solution-{})\n",
               file_.substr(file_.rfind('/') + 1), number_);
  }

  std::string number_, file_;
  std::string todo_, error_, error_where_;
  std::string first_wrong_;
  Formula first_formula_;
  int compared_ = 0;
};

// Leaf copies of the inputs that require grad: what both sides differentiate.
inline Tensor leaf(const Tensor& t, const std::string& name) {
  Tensor copy = t.clone().set_name(name);
  copy.requires_grad_();
  return copy;
}

}  // namespace ag::exercise
