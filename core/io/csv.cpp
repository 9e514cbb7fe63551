// read_csv: a header line of names, then lines of numbers, checked field by
// field so that a bad file is an error naming its line and column.
#include "core/io/csv.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "core/error.hpp"
#include "core/io/file_bytes.hpp"

namespace ag {

namespace {

// Text from the file as errors show it; cut short, as a bad file may hold a huge one.
std::string show(std::string_view text) {
  if (text.size() <= 40) return std::string(text);
  std::string start(text.substr(0, 36));  // (not string + "...": GCC 12 warns wrongly on it)
  return start.append("...");
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One line of the file split at the delimiter. A field in double quotes may
// hold the delimiter, and "" for a quote. `fail` reports a quote left open.
template <typename Fail>
std::vector<std::string> split_fields(std::string_view line, char delimiter, const Fail& fail) {
  std::vector<std::string> fields;
  size_t i = 0;
  for (;;) {
    std::string field;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < line.size() && line[i] == '"') {
      const size_t column = fields.size() + 1;
      for (++i;; ++i) {
        if (i >= line.size()) fail(column, "a quote opened and not closed on this line");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            ++i;
          } else {
            ++i;
            break;
          }
        } else {
          field += line[i];
        }
      }
      while (i < line.size() && line[i] != delimiter) {
        if (line[i] != ' ' && line[i] != '\t')
          fail(column, "text after the closing quote: '" + show(line.substr(i)) + "'");
        ++i;
      }
    } else {
      const size_t end = std::min(line.find(delimiter, i), line.size());
      field = std::string(trim(line.substr(i, end - i)));
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) break;
    ++i;  // past the delimiter: another field follows, perhaps empty
  }
  return fields;
}

}  // namespace

CsvTable parse_csv(std::string_view text, const std::string& source_name,
                   const CsvOptions& options) {
  const file_bytes::Where where{"read_csv", source_name};
  AG_CHECK(options.skip_rows >= 0, "read_csv: skip_rows must be >= 0, got {}", options.skip_rows);
  AG_CHECK(options.delimiter != '"' && options.delimiter != '\n' && options.delimiter != '\r',
           "read_csv: the delimiter cannot be a quote or a line end");

  CsvTable table;
  std::vector<real> values;
  int64_t line_number = 0, rows = 0;
  bool have_header = false;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number <= options.skip_rows || trim(line).empty()) continue;

    auto fail = [&](size_t column, const std::string& problem) {
      std::string at = fmt::format("line {}, column {}", line_number, column);
      if (have_header && column >= 1 && column <= table.columns.size())
        at += fmt::format(" ('{}')", table.columns[column - 1]);
      file_bytes::fail(where, at + ": " + problem);
    };
    std::vector<std::string> fields = split_fields(line, options.delimiter, fail);

    if (!have_header) {
      std::unordered_set<std::string> seen;
      for (size_t c = 0; c < fields.size(); ++c) {
        if (fields[c].empty()) fail(c + 1, "the header has an empty column name");
        if (!seen.insert(fields[c]).second)
          fail(c + 1, "the header names '" + fields[c] + "' twice");
      }
      table.columns = std::move(fields);
      have_header = true;
      continue;
    }

    const size_t width = table.columns.size();
    if (fields.size() > width)
      fail(width + 1,
           fmt::format("{} fields, but the header names {} columns", fields.size(), width));
    for (size_t c = 0; c < width; ++c) {
      if (c >= fields.size())
        fail(c + 1, fmt::format("missing field: the line has {} fields, the header {}",
                                fields.size(), width));
      std::string_view field = fields[c];
      if (field.empty()) fail(c + 1, "empty field: a number is missing");
      std::string_view digits = field;
      if (digits.front() == '+') digits.remove_prefix(1);  // from_chars reads no '+'
      const bool signed_twice = digits.size() < field.size() && !digits.empty() &&
                                (digits.front() == '+' || digits.front() == '-');
      double x = 0;
      const char* last = digits.data() + digits.size();
      const auto [rest, error] = std::from_chars(digits.data(), last, x);
      if (error == std::errc::result_out_of_range)
        fail(c + 1, "'" + show(field) + "' is beyond the range of double");
      if (digits.empty() || signed_twice || error != std::errc() || rest != last)
        fail(c + 1, "'" + show(field) + "' is not a number");
      if (!std::isfinite(x)) fail(c + 1, "'" + show(field) + "' is not a finite number");
      const real stored = static_cast<real>(x);
      if (!std::isfinite(stored))
        fail(c + 1, fmt::format("{} is beyond the range of {}", x, real_name));
      values.push_back(stored);
    }
    ++rows;
  }
  if (!have_header)
    file_bytes::fail(where, fmt::format("no header line{}",
                                        options.skip_rows > 0 ? fmt::format(" after the {} skipped",
                                                                            options.skip_rows)
                                                              : ""));
  table.values = Tensor::empty({rows, static_cast<int64_t>(table.columns.size())});
  std::copy(values.begin(), values.end(), table.values.data());
  return table;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  return parse_csv(file_bytes::read_file("read_csv", path), path, options);
}

int64_t CsvTable::column(const std::string& name) const {
  for (size_t c = 0; c < columns.size(); ++c)
    if (columns[c] == name) return static_cast<int64_t>(c);
  std::string names;
  for (const std::string& n : columns) names += (names.empty() ? "" : ", ") + n;
  AG_CHECK(false, "CsvTable: no column '{}'; the columns are {}", name, names);
  return -1;
}

Tensor CsvTable::select(const std::vector<std::string>& names) const {
  std::vector<int64_t> index;
  for (const std::string& name : names) index.push_back(column(name));
  const int64_t rows = num_rows(), width = static_cast<int64_t>(columns.size()),
                picked = static_cast<int64_t>(index.size());
  Tensor out = Tensor::empty({rows, picked});
  const real* in = values.data();
  real* o = out.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < picked; ++j) o[r * picked + j] = in[r * width + index[j]];
  return out;
}

}  // namespace ag
