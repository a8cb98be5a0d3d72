// libFuzzer target for replication batches (cluster/replication_batch.hpp), the bytes a node
// receives from NATS, and warm-start messages: hostile. The input is tried under the fixed test key
// and, signed with it (so the checks behind the MAC are reached), as a batch body. Never a crash;
// whatever decodes encodes back to exactly the same bytes.
#include <sodium.h>

#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "tyto/cluster/replication_batch.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}

const tyto::cluster::ClusterKey& test_key() {
  static const auto key =
      tyto::cluster::cluster_key_from_secret(std::vector<std::uint8_t>(32, 0x5a)).value();
  return key;
}

void try_bytes(std::span<const std::uint8_t> bytes) {
  using namespace tyto::cluster;
  Batch batch;
  Refusal refusal{};
  if (decode_batch(bytes, test_key(), batch, refusal)) {
    std::vector<std::uint8_t> again;
    check(encode_batch(batch, test_key(), again));
    check(again.size() == bytes.size() && std::equal(again.begin(), again.end(), bytes.begin()));
  } else {
    check(refusal_name(refusal) != nullptr);
  }
  WarmMessage warm;
  if (decode_warm(bytes, test_key(), warm, refusal)) {
    std::vector<std::uint8_t> again;
    check(encode_warm(warm, test_key(), again));
    check(again.size() == bytes.size() && std::equal(again.begin(), again.end(), bytes.begin()));
  } else {
    check(refusal_name(refusal) != nullptr);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tyto::cluster;
  try_bytes({data, size});
  if (size > batch_size_max - batch_mac_size) return 0;
  std::vector<std::uint8_t> signed_bytes(data, data + size);
  signed_bytes.resize(size + batch_mac_size);
  crypto_auth_hmacsha512256(signed_bytes.data() + size, signed_bytes.data(), size,
                            test_key().data());
  try_bytes(signed_bytes);
  return 0;
}
