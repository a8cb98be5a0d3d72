#include "tyto/shard/scrape_gather.hpp"

#include "tyto/core/assert.hpp"
#include "tyto/shard/shard.hpp"

namespace tyto::shard {

ScrapeGather::ScrapeGather(Shard& shard)
    : shard_(shard), pending_(pending_scrapes_count), parts_(shard.shards_count()) {
  free_.reserve(pending_scrapes_count);
  for (std::uint32_t i = pending_scrapes_count; i-- > 0;) free_.push_back(i);
}

PendingScrape* ScrapeGather::start(std::uint32_t hashes_count) noexcept {
  TYTO_ASSERT(hashes_count > 0 && hashes_count <= limits::udp_scrape_hashes_max);
  if (free_.empty()) {
    ++shard_.counters().scrape_slots_full_drops;
    return nullptr;
  }
  PendingScrape& pending = pending_[free_.back()];
  pending.hashes_count = static_cast<std::uint8_t>(hashes_count);
  return &pending;
}

void ScrapeGather::gather(PendingScrape& pending) noexcept {
  const auto pending_index = static_cast<std::uint32_t>(&pending - pending_.data());
  TYTO_ASSERT(!free_.empty() && free_.back() == pending_index);
  pending.answers_missing = 0;
  pending.deadline_s = shard_.now_s() + scrape_gather_timeout_s;
  const std::uint32_t owners = shard_.shards_count();
  for (std::uint32_t owner = 0; owner < owners; ++owner) {
    parts_[owner].pending_index = pending_index;
    parts_[owner].generation = pending.generation;
    parts_[owner].count = 0;
  }
  bool lost = false;
  for (std::uint32_t position = 0; position < pending.hashes_count; ++position) {
    const InfoHash& info_hash = pending.info_hashes[position];
    const std::uint32_t owner = shard_.owner_of(info_hash);
    if (owner == shard_.index()) {
      pending.entries[position] = shard_.scrape(info_hash);
      continue;
    }
    ScrapePart& part = parts_[owner];
    part.positions[part.count] = static_cast<std::uint8_t>(position);
    part.info_hashes[part.count] = info_hash;
    ++pending.answers_missing;
    if (++part.count == scrape_part_hashes_max) {
      lost |= !shard_.forward(owner, Message{part});
      part.count = 0;
    }
  }
  for (std::uint32_t owner = 0; owner < owners; ++owner) {
    if (parts_[owner].count != 0) lost |= !shard_.forward(owner, Message{parts_[owner]});
  }
  if (lost) {
    ++pending.generation;  // answers to parts that did go out are now stale
    shard_.scrape_failed(pending, false);
    return;
  }
  if (pending.answers_missing == 0) {
    ++pending.generation;
    shard_.scrape_gathered(pending, false);  // the caller goes on with its connection
    return;
  }
  pending.in_use = true;
  free_.pop_back();
}

void ScrapeGather::on_part(const ScrapePart& part, std::uint32_t from) noexcept {
  TYTO_ASSERT(part.count <= scrape_part_hashes_max);
  ScrapeAnswer answer;
  answer.pending_index = part.pending_index;
  answer.generation = part.generation;
  answer.count = part.count;
  for (std::uint8_t i = 0; i < part.count; ++i) {
    answer.positions[i] = part.positions[i];
    answer.entries[i] = shard_.scrape(part.info_hashes[i]);
  }
  shard_.forward(from, Message{answer});
}

void ScrapeGather::on_answer(const ScrapeAnswer& answer) noexcept {
  if (answer.pending_index >= pending_.size()) return;
  PendingScrape& pending = pending_[answer.pending_index];
  if (!pending.in_use || pending.generation != answer.generation) return;  // stale
  TYTO_ASSERT(answer.count <= pending.answers_missing);
  for (std::uint8_t i = 0; i < answer.count; ++i) {
    TYTO_ASSERT(answer.positions[i] < pending.hashes_count);
    pending.entries[answer.positions[i]] = answer.entries[i];
  }
  pending.answers_missing = static_cast<std::uint8_t>(pending.answers_missing - answer.count);
  if (pending.answers_missing != 0) return;
  shard_.scrape_gathered(pending, true);
  release(answer.pending_index);
}

void ScrapeGather::expire(std::uint32_t now_s) noexcept {
  for (std::uint32_t i = 0; i < pending_.size(); ++i) {
    PendingScrape& pending = pending_[i];
    if (pending.in_use && static_cast<std::int32_t>(now_s - pending.deadline_s) > 0) {
      // An owner's answer was lost (its mailbox back to us was full): give up; the client retries.
      ++shard_.counters().scrape_gather_timeouts;
      release(i);
      shard_.scrape_failed(pending, true);
    }
  }
}

void ScrapeGather::release(std::uint32_t pending_index) noexcept {
  PendingScrape& pending = pending_[pending_index];
  pending.in_use = false;
  ++pending.generation;
  free_.push_back(pending_index);
}

}  // namespace tyto::shard
