// open_backend: the one place that maps storage.uri to a backend.
#include "tyto/store/backend.hpp"

#include <fmt/core.h>

#include <algorithm>

#include "store/postgresql/postgresql_backend.hpp"
#include "store/sqlite/sqlite_backend.hpp"
#include "tyto/store/memory_backend.hpp"

namespace tyto::store {

Result<std::unique_ptr<Backend>, std::string> open_backend(std::string_view uri) {
  constexpr std::string_view memory_scheme = "memory:";
  constexpr std::string_view sqlite_scheme = "sqlite:";
  if (uri == memory_scheme) return std::unique_ptr<Backend>(make_memory_backend());
  if (uri.starts_with(sqlite_scheme)) return sqlite::open(uri.substr(sqlite_scheme.size()));
  if (uri.starts_with("postgresql://") || uri.starts_with("postgres://")) {
    return postgresql::open(uri);
  }
  // Only the scheme goes to the message: a URI may carry a password.
  const auto scheme_end = uri.find(':');
  return Failure{
      fmt::format("storage: unknown URI scheme '{}' (memory:, sqlite:PATH, postgresql://...)",
                  uri.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end))};
}

namespace {
// One counter: what the peer moved past `stored`, at most what the delta credited for it; the
// credited bytes cut in the same proportion as the real ones.
bool cut_counter(std::uint64_t to, std::uint64_t stored, std::uint64_t& real,
                 std::uint64_t& credited) noexcept {
  const std::uint64_t past = to >= stored ? to - stored : 0;
  if (past >= real) return false;
  credited = static_cast<std::uint64_t>(static_cast<unsigned __int128>(credited) * past / real);
  real = past;
  return true;
}

// One counter from the stored baseline to the sighting, when it did not go down.
void extend_counter(std::uint64_t sighted, std::uint64_t stored, double scale, std::uint64_t& real,
                    std::uint64_t& credited) noexcept {
  if (sighted <= stored) return;
  const std::uint64_t extra = sighted - stored;
  real += extra;
  credited += credited_bytes(extra, scale);
}

std::uint32_t add_seconds(std::uint32_t held, std::uint64_t more) noexcept {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{held} + more, UINT32_MAX));
}

// What the delta credits past a point (t, u, d) another batch credited up to: each counter's
// span beyond it, and the seconds after it.
bool cut_to(AccountingDelta& delta, std::uint64_t t, std::uint64_t u, std::uint64_t d) noexcept {
  bool changed = cut_counter(delta.baseline_uploaded, u, delta.uploaded_real, delta.uploaded);
  changed |= cut_counter(delta.baseline_downloaded, d, delta.downloaded_real, delta.downloaded);
  const std::uint64_t after_s = delta.announced_unix_s > t ? delta.announced_unix_s - t : 0;
  for (std::uint32_t* seconds : {&delta.seed_s, &delta.leech_s}) {
    if (*seconds > after_s) {
      *seconds = static_cast<std::uint32_t>(after_s);
      changed = true;
    }
  }
  return changed;
}

// The span from the stored baseline to the delta's from-baseline (arbitrate_delta's second rule).
bool bridge_from_stored(AccountingDelta& delta, const Baseline& stored,
                        std::uint32_t window_s) noexcept {
  if (!delta.from_continues || stored.closed || window_s == 0 ||
      delta.from_announced_unix_s > stored.announced_unix_s + window_s) {
    return false;
  }
  const std::uint64_t real_before = delta.uploaded_real + delta.downloaded_real;
  extend_counter(delta.from_uploaded, stored.uploaded, delta.upload_scale, delta.uploaded_real,
                 delta.uploaded);
  extend_counter(delta.from_downloaded, stored.downloaded, delta.download_scale,
                 delta.downloaded_real, delta.downloaded);
  const std::uint64_t between_s = delta.from_announced_unix_s > stored.announced_unix_s
                                      ? delta.from_announced_unix_s - stored.announced_unix_s
                                      : 0;
  if (stored.seeding) {
    delta.seed_s = add_seconds(delta.seed_s, between_s);
  } else {
    delta.leech_s = add_seconds(delta.leech_s, between_s);
  }
  return between_s != 0 || delta.uploaded_real + delta.downloaded_real != real_before;
}
}  // namespace

bool arbitrate_delta(AccountingDelta& delta, const Baseline* stored,
                     std::uint32_t window_s) noexcept {
  if (stored == nullptr) return false;
  // The peer's last stop (a tombstone's is its baseline). A delta whose from-baseline comes
  // before it belongs to the session that stopped there: cut against the stop, whatever session
  // the row holds now. One after it belongs to a later session: a tombstone says nothing of it.
  Baseline stop = *stored;
  if (stored->stopped_unix_s != 0) {
    stop.announced_unix_s = stored->stopped_unix_s;
    stop.uploaded = stored->stopped_uploaded;
    stop.downloaded = stored->stopped_downloaded;
  }
  if (stored->stopped_unix_s != 0 || stored->closed) {
    // A session's start orders by time alone (its counters start over); a continuing from-baseline
    // by counters too, as any two baselines (baseline_not_older).
    const bool before_stop =
        delta.from_continues
            ? baseline_not_older(stop.announced_unix_s, stop.uploaded, stop.downloaded,
                                 delta.from_announced_unix_s, delta.from_uploaded,
                                 delta.from_downloaded)
            : delta.from_announced_unix_s < stop.announced_unix_s;
    if (before_stop) {
      delta.keeps_stored_baseline = stored->announced_unix_s >= stop.announced_unix_s;
      return cut_to(delta, stop.announced_unix_s, stop.uploaded, stop.downloaded) ||
             delta.keeps_stored_baseline;
    }
    if (stored->closed) return false;
  }
  const bool same = stored->announced_unix_s == delta.from_announced_unix_s &&
                    stored->uploaded == delta.from_uploaded &&
                    stored->downloaded == delta.from_downloaded;
  if (same) return false;
  if (!baseline_not_older(stored->announced_unix_s, stored->uploaded, stored->downloaded,
                          delta.from_announced_unix_s, delta.from_uploaded,
                          delta.from_downloaded)) {
    return bridge_from_stored(delta, *stored, window_s);
  }
  return cut_to(delta, stored->announced_unix_s, stored->uploaded, stored->downloaded);
}

}  // namespace tyto::store
