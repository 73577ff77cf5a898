// splitmix64: a tiny, portable pseudo-random generator, so the same seed
// gives the same numbers on every machine (synthetic model files, filler
// data for measurements). Not for anything that needs real randomness.
#pragma once

#include <cstdint>

namespace memwall {

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

}  // namespace memwall
