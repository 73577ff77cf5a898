// ISA targets: names round-trip, detection is consistent, forcing a target the
// CPU lacks throws, MEMWALL_ISA picks the target and rejects bad values.
#include "kernels/isa.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "base/error.h"

namespace memwall::kernels {
namespace {

constexpr Isa kAll[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};

// Sets (or clears) MEMWALL_ISA for one test and restores the previous state.
class EnvIsa {
 public:
  explicit EnvIsa(const char* value) {
    if (const char* old = getenv("MEMWALL_ISA")) saved_ = old, had_ = true;
    if (value) {
      setenv("MEMWALL_ISA", value, 1);
    } else {
      unsetenv("MEMWALL_ISA");
    }
    reset_isa();
  }
  ~EnvIsa() {
    if (had_) {
      setenv("MEMWALL_ISA", saved_.c_str(), 1);
    } else {
      unsetenv("MEMWALL_ISA");
    }
    reset_isa();
  }

 private:
  std::string saved_;
  bool had_ = false;
};

TEST(Isa, NamesRoundTrip) {
  for (Isa isa : kAll) {
    Isa back;
    ASSERT_TRUE(isa_from_name(isa_name(isa), back)) << isa_name(isa);
    EXPECT_EQ(back, isa);
  }
  Isa out = Isa::kAvx2;
  EXPECT_FALSE(isa_from_name("sse9", out));
  EXPECT_FALSE(isa_from_name("", out));
  EXPECT_FALSE(isa_from_name("AVX2", out));  // names are lower-case, as documented
  EXPECT_EQ(out, Isa::kAvx2);                // untouched on failure
}

TEST(Isa, DetectedIsSupportedAndOrdered) {
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  EXPECT_TRUE(isa_supported(detected_isa()));
  for (Isa isa : kAll) {
    EXPECT_EQ(isa_supported(isa), static_cast<int>(isa) <= static_cast<int>(detected_isa()))
        << isa_name(isa);
  }
}

TEST(Isa, ForceAndReset) {
  EnvIsa env(nullptr);
  for (Isa isa : kAll) {
    if (isa_supported(isa)) {
      force_isa(isa);
      EXPECT_EQ(active_isa(), isa);
    } else {
      EXPECT_THROW(force_isa(isa), Error) << isa_name(isa);
    }
  }
  reset_isa();
  EXPECT_EQ(active_isa(), detected_isa());
}

TEST(Isa, ForcingAnUnsupportedTargetThrows) {
  if (detected_isa() == Isa::kAvx512Vnni) GTEST_SKIP() << "this CPU supports every target";
  EXPECT_THROW(force_isa(Isa::kAvx512Vnni), Error);
}

TEST(Isa, EnvironmentChoosesTheTarget) {
  for (Isa isa : kAll) {
    EnvIsa env(std::string(isa_name(isa)).c_str());
    if (isa_supported(isa)) {
      EXPECT_EQ(active_isa(), isa);
    } else {
      EXPECT_THROW(active_isa(), Error) << isa_name(isa);
    }
  }
  {
    EnvIsa env("");
    EXPECT_EQ(active_isa(), detected_isa());  // empty means unset
  }
}

TEST(Isa, EnvironmentRejectsUnknownNamesWithTheList) {
  EnvIsa env("avx1024");
  try {
    active_isa();
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("avx1024"), std::string::npos) << msg;
    EXPECT_NE(msg.find("avx512vnni"), std::string::npos) << msg;
  }
}

TEST(Isa, ForceOverridesTheEnvironment) {
  EnvIsa env("scalar");
  EXPECT_EQ(active_isa(), Isa::kScalar);
  force_isa(detected_isa());
  EXPECT_EQ(active_isa(), detected_isa());
}

}  // namespace
}  // namespace memwall::kernels
