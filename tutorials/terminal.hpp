// Pictures and progress in the terminal, shared by the tutorial chapters.
//
//   Progress      a training progress line: redrawn in place (\r) on a terminal,
//                 a plain line every N steps when the output goes to a file or pipe
//   LossCsv       writes step,loss[,metric] rows to build/tutorials/<name>.csv
//                 (for a spreadsheet or matplotlib) and keeps the losses for ...
//   line_chart    ... an ASCII chart of a series, about 60x12 characters
//   loss_chart    the chart of a training loss, on a log scale
//   heat_map      a matrix as shades " .:-=+*#%@" (or as numbers), with labels
//   region_plot   the decision regions of a 2-D classifier, data points on top
//   accuracy      the fraction of rows whose largest logit is the target class
//   section       a heading between the steps of a chapter
//   save_model    a chapter's trained model, to build/tutorials/NN_model.safetensors
//
// Everything returns or prints plain text with no timing in it, so a chapter
// prints the same characters on every run with the same seed.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/io/atomic_file.hpp"
#include "layers/nn.hpp"

namespace ag::tutorial {

// True when stdout is a terminal (not a file, a pipe or make's log).
inline bool stdout_is_terminal() { return isatty(fileno(stdout)) != 0; }

// `line` without its trailing spaces (pictures are padded grids; logs need no padding).
inline std::string rstrip(std::string line) {
  line.erase(line.find_last_not_of(' ') + 1);
  return line;
}

// A chapter's section heading:  "\n== 2. A neuron by hand ==".
inline void section(const std::string& title) { fmt::print("\n== {} ==\n", title); }

// --- progress ----------------------------------------------------------------------

// A progress line for a loop of `total` steps, counted from 1:
//   train    340/1000 [#######.............]  loss 0.4213  acc 87.3%
// On a terminal it is redrawn in place; otherwise a line is printed every
// `every` steps (default: total/10) and at the last step.
class Progress {
 public:
  Progress(std::string label, int64_t total, int64_t every = 0)
      : label_(std::move(label)),
        total_(std::max<int64_t>(total, 1)),
        every_(every > 0 ? every : std::max<int64_t>(total_ / 10, 1)),
        tty_(stdout_is_terminal()) {}

  // `extra` is appended to the line, e.g. fmt::format("acc {:.1f}%", 100 * acc).
  void update(int64_t step, double loss, const std::string& extra = {}) {
    const bool last = step >= total_;
    // Redrawing costs a write to the terminal: about 200 redraws per loop suffice.
    if (tty_ && !last && step % std::max<int64_t>(total_ / 200, 1) != 0) return;
    if (!tty_ && !last && step % every_ != 0) return;
    const int bar_width = 20;
    const int filled = static_cast<int>(bar_width * std::min(step, total_) / total_);
    std::string line =
        fmt::format("  {:<8} {:>{}}/{} [{}{}]  loss {:.4f}{}{}", label_, step,
                    std::to_string(total_).size(), total_, std::string(filled, '#'),
                    std::string(bar_width - filled, '.'), loss, extra.empty() ? "" : "  ", extra);
    if (tty_) {
      // Pad with spaces over the rest of a longer previous line.
      const size_t width = std::max(line.size(), shown_);
      shown_ = line.size();
      line.resize(width, ' ');
      fmt::print("\r{}", line);
      if (last) fmt::print("\n");
    } else {
      fmt::print("{}\n", line);
    }
    std::fflush(stdout);
  }

 private:
  std::string label_;
  int64_t total_, every_;
  bool tty_;
  size_t shown_ = 0;
};

// --- loss curve as CSV ---------------------------------------------------------------

// Rows "step,loss" (or "step,loss,<metric>") for a CSV file, written whole by
// save() (atomically, core/io/atomic_file.hpp: a chapter stopped midway leaves the
// last run's file as it was); the parent directory is made if needed. The
// losses are also kept, for line_chart.
//   LossCsv csv("build/tutorials/02_mlp_loss.csv", "accuracy");
//   csv.add(step, loss.item(), acc);
//   fmt::print("loss curve: {}\n", csv.save());
class LossCsv {
 public:
  explicit LossCsv(std::string path, std::string metric_name = {})
      : path_(std::move(path)),
        text_("step,loss" + (metric_name.empty() ? "" : "," + metric_name) + "\n") {}

  void add(int64_t step, double loss) {
    text_ += fmt::format("{},{:.6g}\n", step, loss);
    losses_.push_back(loss);
  }
  void add(int64_t step, double loss, double metric) {
    text_ += fmt::format("{},{:.6g},{:.6g}\n", step, loss, metric);
    losses_.push_back(loss);
  }

  // Writes the rows so far; returns the path.
  const std::string& save() const {
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    std::error_code error;
    if (!parent.empty()) std::filesystem::create_directories(parent, error);
    AG_CHECK(!error, "LossCsv: cannot make the directory '{}': {}", parent.string(),
             error.message());
    write_file_atomically("LossCsv", path_, text_);
    return path_;
  }

  const std::string& path() const { return path_; }
  const std::vector<double>& losses() const { return losses_; }

 private:
  std::string path_;
  std::string text_;
  std::vector<double> losses_;
};

// --- line chart ------------------------------------------------------------------------

struct ChartOptions {
  int width = 60;      // columns of the plot area
  int height = 12;     // rows of the plot area
  bool log_y = false;  // log10 scale: a loss falling from 1 to 0.01 stays readable
  std::string title = "loss";
  std::string x_label = "step";
  int64_t x_first = 1;  // the x value (step) of values[0]
  int64_t x_step = 1;   // steps between consecutive values
};

// The series as a chart: each column is the mean of the values that fall in
// it, drawn as '*', with ':' joining neighbours that are rows apart. Values
// that are not finite (a diverged loss) are left out.
//   loss (log scale)
//      1.099 |*
//            |:
//            | ****
//      0.010 +------------------------------------------------------------
//             1                          step                        1000
inline std::string line_chart(const std::vector<double>& values, const ChartOptions& opt = {}) {
  if (values.empty()) return opt.title + ": (no values)\n";
  const int n = static_cast<int>(values.size());
  const int cols = std::min(opt.width, n);
  const int rows = std::max(opt.height, 2);
  auto transform = [&](double v) { return opt.log_y ? std::log10(std::max(v, 1e-12)) : v; };
  std::vector<double> ys(cols, NAN);
  double lo = INFINITY, hi = -INFINITY;
  for (int c = 0; c < cols; ++c) {
    const int begin = c * n / cols, end = std::max((c + 1) * n / cols, begin + 1);
    double s = 0;
    int count = 0;
    for (int i = begin; i < end; ++i) {
      if (!std::isfinite(values[i])) continue;
      s += transform(values[i]);
      ++count;
    }
    if (count == 0) continue;
    ys[c] = s / count;
    lo = std::min(lo, ys[c]);
    hi = std::max(hi, ys[c]);
  }
  if (!std::isfinite(lo)) return opt.title + ": (no finite values)\n";
  if (hi - lo < 1e-12) hi = lo + 1;
  auto row_of = [&](double y) {
    return static_cast<int>(std::lround((hi - y) / (hi - lo) * (rows - 1)));
  };
  std::vector<std::string> grid(rows, std::string(cols, ' '));
  for (int c = 0; c < cols; ++c) {
    if (std::isnan(ys[c])) continue;
    const int r = row_of(ys[c]);
    if (c > 0 && !std::isnan(ys[c - 1])) {  // join to the previous column's row
      const int p = row_of(ys[c - 1]);
      for (int k = std::min(p, r) + 1; k < std::max(p, r); ++k) grid[k][c] = ':';
    }
    grid[r][c] = '*';
  }
  auto label = [&](double y) { return fmt::format("{:.4g}", opt.log_y ? std::pow(10.0, y) : y); };
  std::string out = opt.title + (opt.log_y ? " (log scale)\n" : "\n");
  for (int r = 0; r < rows; ++r) {
    std::string y_label;
    if (r == 0) y_label = label(hi);
    if (r == rows / 2) y_label = label(hi - (hi - lo) * r / (rows - 1));
    if (r == rows - 1) y_label = label(lo);
    out += rstrip(fmt::format("{:>10} |{}", y_label, grid[r])) + "\n";
  }
  out += fmt::format("{:>10} +{}\n", "", std::string(cols, '-'));
  const std::string first = std::to_string(opt.x_first);
  const std::string last = std::to_string(opt.x_first + (n - 1) * opt.x_step);
  std::string axis(cols + 1, ' ');
  axis.replace(1, first.size(), first);
  if (static_cast<int>(opt.x_label.size()) + 2 * 8 < cols)
    axis.replace((cols - opt.x_label.size()) / 2 + 1, opt.x_label.size(), opt.x_label);
  if (last.size() < axis.size()) axis.replace(axis.size() - last.size(), last.size(), last);
  out += rstrip(fmt::format("{:>10} {}", "", axis)) + "\n";
  return out;
}

// A training loss on a log scale (losses fall over decades), as every chapter
// draws its loss curve:
//   fmt::print("{}", loss_chart(csv.losses(), "training loss (MSE, one point per batch)"));
inline std::string loss_chart(const std::vector<double>& losses, const std::string& title) {
  ChartOptions chart;
  chart.title = title;
  chart.log_y = true;
  return line_chart(losses, chart);
}

// --- heat map ----------------------------------------------------------------------------

struct HeatMapOptions {
  std::vector<std::string> row_labels;  // one per row, or empty
  std::vector<std::string> col_labels;  // one per column, or empty (then 0, 1, ...)
  std::vector<int64_t> marked;          // per row: a column drawn in [brackets], or -1
  bool scale = false;                   // min-max scale the values; otherwise clamp them to [0,1]
  bool numbers = false;                 // print each value (2 decimals) instead of a shade
  std::string ramp = " .:-=+*#%@";      // lightest (0) to darkest (1)
};

// A 2-D tensor (rows, cols) as text, one row per line:
//          0   1   2   3
//   ex 0  ..  [@@] ..  ..
inline std::string heat_map(const Tensor& m, const HeatMapOptions& opt = {}) {
  AG_CHECK(m.dim() == 2, "heat_map: expected a 2-D tensor (rows, cols), got {}", describe(m));
  const int64_t rows = m.shape()[0], cols = m.shape()[1];
  const std::vector<real> v = m.to_vector();
  double lo = 0, hi = 1;
  if (opt.scale && !v.empty()) {
    lo = *std::min_element(v.begin(), v.end());
    hi = *std::max_element(v.begin(), v.end());
    if (hi - lo < 1e-12) hi = lo + 1;
  }
  const int cell = opt.numbers ? 6 : 4;  // "[0.93]" or "[@@]"
  size_t label_width = 0;
  for (const std::string& l : opt.row_labels) label_width = std::max(label_width, l.size());

  std::string header(label_width, ' ');
  for (int64_t c = 0; c < cols; ++c) {
    std::string l =
        c < static_cast<int64_t>(opt.col_labels.size()) ? opt.col_labels[c] : std::to_string(c);
    header += fmt::format("{:^{}}", l.substr(0, cell), cell);
  }
  std::string out = rstrip(header) + "\n";
  const int levels = static_cast<int>(opt.ramp.size());
  for (int64_t r = 0; r < rows; ++r) {
    std::string line = fmt::format(
        "{:<{}}", r < static_cast<int64_t>(opt.row_labels.size()) ? opt.row_labels[r] : "",
        label_width);
    const int64_t mark = r < static_cast<int64_t>(opt.marked.size()) ? opt.marked[r] : -1;
    for (int64_t c = 0; c < cols; ++c) {
      const double value = v[r * cols + c];
      std::string body;
      if (!std::isfinite(value)) {
        body = opt.numbers ? " nan" : "??";
      } else if (opt.numbers) {
        body = fmt::format("{:4.2f}", value);
      } else {
        const double t = std::clamp((value - lo) / (hi - lo), 0.0, 1.0);
        body = std::string(2, opt.ramp[std::min(levels - 1, static_cast<int>(t * levels))]);
      }
      line += c == mark ? "[" + body + "]" : " " + body + " ";
    }
    out += rstrip(line) + "\n";
  }
  if (!opt.numbers)
    out += fmt::format("{}shades \"{}\" from {:.2f} to {:.2f}{}\n", std::string(label_width, ' '),
                       opt.ramp, lo, hi, opt.marked.empty() ? "" : "; [ ] marks a cell");
  return out;
}

// --- decision regions ------------------------------------------------------------------------

struct RegionPlotOptions {
  int width = 64;   // characters; a character is about twice as tall as wide,
  int height = 28;  // so 64x28 looks roughly square
  double x_min = -1.1, x_max = 1.1, y_min = -1.1, y_max = 1.1;
  std::string region_symbols = " .:-~^";  // the region of class k is drawn with [k]
  std::string point_symbols = "ox*#@%";   // a data point of class k with [k]
};

// Class ids predicted for a batch of points (N,2): the classifier being drawn.
using Classify = std::function<std::vector<int64_t>(const Tensor& points)>;

// Asks `classify` for the class of the centre of every character cell, draws
// each cell with its class's region symbol, then puts every data point (N,2)
// with its true label on top. A point drawn inside another class's region is
// one the classifier gets wrong.
inline std::string region_plot(const Classify& classify, const Tensor& points,
                               const std::vector<int64_t>& labels,
                               const RegionPlotOptions& opt = {}) {
  AG_CHECK(points.dim() == 2 && points.shape()[1] == 2 &&
               points.shape()[0] == static_cast<int64_t>(labels.size()),
           "region_plot: points {} must be (N,2) with one label each ({} labels)", describe(points),
           labels.size());
  const int W = opt.width, H = opt.height;
  const double dx = (opt.x_max - opt.x_min) / W, dy = (opt.y_max - opt.y_min) / H;
  std::vector<real> centres;
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) {
      centres.push_back(static_cast<real>(opt.x_min + (c + 0.5) * dx));
      centres.push_back(static_cast<real>(opt.y_max - (r + 0.5) * dy));  // row 0 at the top
    }
  std::vector<int64_t> cls;
  {
    NoGradGuard no_grad;  // drawing needs no graph
    cls = classify(from_vector(centres, {int64_t{W} * H, 2}));
  }
  AG_CHECK(cls.size() == static_cast<size_t>(W) * H,
           "region_plot: the classifier returned {} classes for {} points", cls.size(), W * H);
  auto symbol = [](const std::string& set, int64_t k) {
    return set[static_cast<size_t>(k) % set.size()];
  };
  std::vector<std::string> grid(H, std::string(W, ' '));
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) grid[r][c] = symbol(opt.region_symbols, cls[r * W + c]);
  for (size_t i = 0; i < labels.size(); ++i) {
    const int c = static_cast<int>(std::floor((points.at({int64_t(i), 0}) - opt.x_min) / dx));
    const int r = static_cast<int>(std::floor((opt.y_max - points.at({int64_t(i), 1})) / dy));
    if (r >= 0 && r < H && c >= 0 && c < W) grid[r][c] = symbol(opt.point_symbols, labels[i]);
  }
  std::string out = "+" + std::string(W, '-') + "+\n";
  for (const std::string& line : grid) out += "|" + line + "|\n";
  out += "+" + std::string(W, '-') + "+\n";
  int64_t classes = 0;
  for (int64_t k : labels) classes = std::max(classes, k + 1);
  for (int64_t k : cls) classes = std::max(classes, k + 1);
  out += "class:";
  for (int64_t k = 0; k < classes; ++k)
    out += fmt::format("  {} region '{}' points '{}'", k, symbol(opt.region_symbols, k),
                       symbol(opt.point_symbols, k));
  return out + "\n";
}

// --- metrics ----------------------------------------------------------------------------------

// The predicted class of each row of logits (N,C): the index of its largest entry.
inline std::vector<int64_t> predicted_classes(const Tensor& logits) {
  NoGradGuard no_grad;
  return to_indices(argmax(logits, -1), "predicted_classes");
}

// The fraction of rows whose predicted class equals the target.
inline double accuracy(const Tensor& logits, const std::vector<int64_t>& targets) {
  const std::vector<int64_t> predicted = predicted_classes(logits);
  AG_CHECK(predicted.size() == targets.size(), "accuracy: {} predictions but {} targets",
           predicted.size(), targets.size());
  int64_t correct = 0;
  for (size_t i = 0; i < targets.size(); ++i) correct += predicted[i] == targets[i];
  return targets.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(targets.size());
}

// --- the trained model -------------------------------------------------------------

// Writes `model`'s parameters and buffers by name (model.save: .safetensors,
// what PyTorch loads; docs/pytorch.md shows each chapter's model loaded there).
inline void save_model(const nn::Module& model, const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  model.save(path);
  fmt::print("saved the model, {} tensors by name: {}\n", model.state_dict().size(), path);
}

}  // namespace ag::tutorial
