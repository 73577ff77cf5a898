// A compiled PCRE2 pattern in UTF mode with Unicode properties (\p{L}, and
// \s meaning Unicode white space), JIT-compiled when the platform allows.
// Subjects need not be valid UTF-8: ill-formed bytes never match a character
// class, so they end up in the gaps between matches and survive to byte-level BPE.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace memwall {

class Pcre2Regex {
 public:
  explicit Pcre2Regex(const std::string& pattern);  // throws Error with PCRE2's message
  ~Pcre2Regex();
  Pcre2Regex(const Pcre2Regex&) = delete;
  Pcre2Regex& operator=(const Pcre2Regex&) = delete;

  // Per-thread match state; one can serve any number of for_each_match calls.
  class MatchData {
   public:
    explicit MatchData(const Pcre2Regex& regex);
    ~MatchData();
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
    void* get() const { return md_; }

   private:
    void* md_;
  };

  // Calls on_match(begin, end) for each non-overlapping match in `subject`, left
  // to right; offsets are bytes.
  template <typename OnMatch>
  void for_each_match(std::string_view subject, const MatchData& md, OnMatch&& on_match) const;

  const std::string& pattern() const { return pattern_; }

 private:
  // Finds the first match at or after `start`; false if none.
  bool find(std::string_view subject, size_t start, void* match_data, size_t& begin,
            size_t& end) const;

  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so pcre2.h stays out of headers
};

template <typename OnMatch>
void Pcre2Regex::for_each_match(std::string_view subject, const MatchData& md,
                                OnMatch&& on_match) const {
  size_t start = 0, begin = 0, end = 0;
  while (start < subject.size() && find(subject, start, md.get(), begin, end)) {
    if (end == begin) {
      // An empty match (possible only with lookaround-only patterns) yields no
      // piece; step over one byte so the scan always moves forward.
      start = begin + 1;
      continue;
    }
    on_match(begin, end);
    start = end;
  }
}

}  // namespace memwall
