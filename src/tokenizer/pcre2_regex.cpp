#include "tokenizer/pcre2_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <new>

#include "base/error.h"

namespace memwall {

Pcre2Regex::Pcre2Regex(const std::string& pattern) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // MATCH_INVALID_UTF: raw bytes from a file may be ill-formed; they must not
  // abort the split, only fail to match.
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("pre-tokenizer regex does not compile at offset ", error_offset, ": ",
         reinterpret_cast<const char*>(message), " (pattern: ", pattern, ")");
  }
  code_ = code;
  // Without JIT support (some platforms) pcre2_match interprets: slower, same result.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
}

Pcre2Regex::~Pcre2Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Pcre2Regex::MatchData::MatchData(const Pcre2Regex& regex)
    : md_(pcre2_match_data_create_from_pattern(static_cast<pcre2_code*>(regex.code_), nullptr)) {
  if (!md_) throw std::bad_alloc();
}

Pcre2Regex::MatchData::~MatchData() {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(md_));
}

bool Pcre2Regex::find(std::string_view subject, size_t start, void* match_data, size_t& begin,
                      size_t& end) const {
  auto* code = static_cast<pcre2_code*>(code_);
  auto* md = static_cast<pcre2_match_data*>(match_data);
  auto subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = pcre2_match(code, subj, subject.size(), start, 0, md, nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    // The JIT's default 32 KiB stack can run out on very long runs; the
    // interpreter keeps its backtracking state on the heap instead.
    rc = pcre2_match(code, subj, subject.size(), start, PCRE2_NO_JIT, md, nullptr);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    fail("pre-tokenizer regex failed at byte ", start, ": ",
         reinterpret_cast<const char*>(message));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  begin = ov[0];
  end = ov[1];
  return true;
}

}  // namespace memwall
