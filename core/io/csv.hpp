// Reading a table of numbers from a CSV file with a header line, as
// pandas.read_csv does for an all-numeric file:
//
//   CRIM,ZN,INDUS,...,MEDV          the header: one name per column
//   0.00632,18,2.31,...,24          then one row of numbers per line
//
// into a (rows, columns) tensor and the column names. Fields are separated by
// the delimiter (',' by default); a field may be quoted ("CRIM", with "" for a
// quote inside), spaces around a field are ignored, Windows line ends (\r\n)
// are accepted and empty lines are skipped. Every field of a row must be a
// finite number (123, -4.5, 1e-3, +7): a missing, empty or non-numeric field,
// NaN or inf, and a row with too many fields are an ag::Error naming the file,
// the line and the column:
//
//   read_csv: 'houses.csv': line 7, column 6 ('RM'): 'n/a' is not a number
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.hpp"

namespace ag {

struct CsvOptions {
  // Lines before the header to skip (pandas' skiprows). scikit-learn's copy of
  // the Boston housing data starts with a line "506,13,,,..." (rows, features)
  // before its header: skip_rows = 1.
  int64_t skip_rows = 0;
  char delimiter = ',';
};

struct CsvTable {
  std::vector<std::string> columns;  // the header's names, in file order
  Tensor values;                     // (rows, columns), row-major as in the file

  int64_t num_rows() const { return values.size(0); }
  // The index of a column; an unknown name is an error listing the names.
  int64_t column(const std::string& name) const;
  // The named columns, in the order asked: (rows, names.size()).
  Tensor select(const std::vector<std::string>& names) const;
};

CsvTable read_csv(const std::string& path, const CsvOptions& options = {});
// The same on text in memory; `source_name` stands for the file in errors.
CsvTable parse_csv(std::string_view text, const std::string& source_name,
                   const CsvOptions& options = {});

}  // namespace ag
