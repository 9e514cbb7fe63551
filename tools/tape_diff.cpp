// tape_diff: where two runs of a training step part ways.
//
//   build/release/tools/tape_diff a.safetensors b.safetensors [--atol 1e-6] [--rtol 1e-4]
//
// a and b are tapes (autograd/tape.hpp): written by ag::record_tape or
// AG_TAPE=path in attograd, or by tools/torch_tape.py from a PyTorch model.
// Prints the first op whose output (in the order the ops ran forward) or
// whose gradient (in the order backward reached them) differs by more than
// atol + rtol * |b|, with the op's trace line from both runs; or that the
// tapes agree. Exit status: 0 they agree, 1 they differ, 2 a file could not be
// read or the arguments are wrong.
#include <cstdlib>
#include <iostream>
#include <string>

#include "autograd/tape.hpp"
#include "core/error.hpp"

namespace {

int usage(const std::string& problem) {
  std::cerr << "tape_diff: " << problem << "\n"
            << "usage: tape_diff A.safetensors B.safetensors [--atol X] [--rtol X]\n"
            << "  A, B: tapes from ag::record_tape / AG_TAPE=path, or tools/torch_tape.py\n"
            << "  values agree when |a - b| <= atol + rtol * |b| (defaults 1e-6 and 1e-4)\n";
  return 2;
}

bool parse_number(const char* text, double& value) {
  char* end = nullptr;
  value = std::strtod(text, &end);
  return end != text && *end == '\0' && value >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string paths[2];
  int count = 0;
  ag::TapeTolerance tolerance;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--atol" || arg == "--rtol") {
      if (i + 1 == argc) return usage(arg + " needs a number");
      double& target = arg == "--atol" ? tolerance.atol : tolerance.rtol;
      if (!parse_number(argv[++i], target))
        return usage(arg + " needs a number >= 0, got '" + argv[i] + "'");
    } else if (arg == "-h" || arg == "--help") {
      usage("compares two tapes");
      return 0;
    } else if (count < 2) {
      paths[count++] = arg;
    } else {
      return usage("more than two files given");
    }
  }
  if (count != 2) return usage("two tape files are needed");
  try {
    const ag::Tape a = ag::load_tape(paths[0]);
    const ag::Tape b = ag::load_tape(paths[1]);
    const ag::TapeComparison result = ag::compare_tapes(a, b, tolerance);
    std::cout << result.report;
    return result.kind == ag::TapeComparison::Kind::none ? 0 : 1;
  } catch (const ag::Error& e) {
    std::cerr << "tape_diff: " << e.what() << "\n";
    return 2;
  }
}
