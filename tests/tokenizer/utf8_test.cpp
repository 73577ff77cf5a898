#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace memwall {
namespace {

TEST(Utf8, ScanClassifiesSequences) {
  using K = utf8::Scan;
  EXPECT_EQ(utf8::scan("a").kind, K::kValid);
  EXPECT_EQ(utf8::scan("\xC3\xA9").length, 2u);
  EXPECT_EQ(utf8::scan("\xF0\x9F\x98\x80").length, 4u);
  EXPECT_EQ(utf8::scan("\xF0\x9F").kind, K::kIncomplete);
  EXPECT_EQ(utf8::scan("\xFF").kind, K::kInvalid);
  EXPECT_EQ(utf8::scan("\xC0\x80").kind, K::kInvalid);          // overlong
  EXPECT_EQ(utf8::scan("\xED\xA0\x80").kind, K::kInvalid);      // surrogate
  EXPECT_EQ(utf8::scan("\xF4\x90\x80\x80").kind, K::kInvalid);  // above U+10FFFF
  EXPECT_EQ(utf8::scan("\xE2\x82"
                       "a")
                .kind,
            K::kInvalid);
  EXPECT_EQ(utf8::scan("\xE2\x82"
                       "a")
                .length,
            2u);  // maximal subpart
}

TEST(Utf8, SanitizeReplacesMaximalSubparts) {
  EXPECT_EQ(utf8::sanitize("a\xFF"
                           "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::sanitize("\xE2\x82"
                           "a"),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(utf8::sanitize("\xF0\x9F\x98"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sanitize("ok é 😀"), "ok é 😀");
}

}  // namespace
}  // namespace memwall
