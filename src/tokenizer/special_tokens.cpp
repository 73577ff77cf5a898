#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace memwall {

SpecialTokenSplitter::SpecialTokenSplitter(const Vocab& vocab) {
  for (int32_t id : vocab.special_ids()) {
    const std::string& text = vocab.text(id);
    by_first_byte_[static_cast<uint8_t>(text[0])].push_back(
        {text, id, vocab.type(id) == TokenType::kUserDefined});
    any_ = true;
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [](const Candidate& a, const Candidate& b) {
      return a.text.size() > b.text.size();
    });
  }
}

void SpecialTokenSplitter::split(std::string_view text, bool parse_special,
                                 std::vector<Fragment>& out) const {
  size_t plain_start = 0;
  size_t pos = 0;
  while (any_ && pos < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<uint8_t>(text[pos])];
    const Candidate* hit = nullptr;
    for (const Candidate& c : candidates) {
      if ((parse_special || c.user_defined) && text.compare(pos, c.text.size(), c.text) == 0) {
        hit = &c;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start), -1});
    out.push_back({hit->text, hit->id});
    pos += hit->text.size();
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace memwall
