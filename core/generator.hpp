// Random numbers that are the same on every machine and every run.
//
// The engine draws from a 64-bit Mersenne Twister (its output sequence is fixed
// by the C++ standard) and turns the bits into uniforms and normals with its own
// formulas, because std::normal_distribution differs between standard libraries.
#pragma once

#include <cstdint>
#include <random>

#include "core/error.hpp"

namespace ag {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }

  void manual_seed(uint64_t seed);
  uint64_t initial_seed() const { return seed_; }

  uint64_t next_u64() { return engine_(); }
  double uniform();                            // in [0, 1), 53 random bits
  double normal();                             // mean 0, variance 1 (Box-Muller)
  int64_t randint(int64_t low, int64_t high);  // uniform integer in [low, high)
  // true with probability p, 0 <= p <= 1
  bool bernoulli(double p) {
    AG_CHECK(p >= 0 && p <= 1, "bernoulli: probability {} is outside [0, 1]", p);
    return uniform() < p;
  }

 private:
  std::mt19937_64 engine_;
  uint64_t seed_ = 0;
  bool has_spare_normal_ = false;  // Box-Muller makes normals in pairs
  double spare_normal_ = 0;
};

// The generator every random function uses when none is passed.
Generator& default_generator();

// Reseeds the default generator: same seed, same numbers, every run.
void manual_seed(uint64_t seed);

}  // namespace ag
