// Provenance records fit their 2048-byte slot as valid JSON, even for large groups.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nmech/sweep/provenance.hpp"

namespace nmech::sweep {
namespace {

Attempt group_of(int ranks, int per_host) {
  Attempt a;
  a.world_size = 1024;
  a.group = 3;
  a.reducer = "overlap";
  a.bucket_mb = 25;
  a.first_bucket_mb = 1;
  a.batch = 4096;
  for (int r = 0; r < ranks; ++r) {
    a.world_ranks.push_back(3 * ranks + r);
    a.hosts.push_back("compute-node-" + std::to_string(100 + r / per_host) + ".cluster.example.org");
  }
  return a;
}

TEST(Provenance, SmallGroupsKeepEveryRankAndHost) {
  const auto j = nlohmann::json::parse(provenance_json(group_of(4, 2)));
  EXPECT_EQ(j["world_ranks"].size(), 4u);
  EXPECT_EQ(j["hosts"].size(), 4u);
  EXPECT_EQ(j["data_parallel"]["group_size"], 4);
  EXPECT_EQ(j["data_parallel"]["per_rank_batch"], nlohmann::json({1024, 1024}));
  EXPECT_FALSE(j.contains("world_ranks_range"));
}

TEST(Provenance, LargeGroupsAreCompactedToValidJsonThatFits) {
  const std::string text = provenance_json(group_of(256, 8));
  ASSERT_LE(text.size(), 2048u);
  const auto j = nlohmann::json::parse(text);  // throws if cut mid-way
  EXPECT_EQ(j["world_ranks"], nlohmann::json({768, 1023}));
  EXPECT_TRUE(j["world_ranks_range"].get<bool>());
  EXPECT_EQ(j["data_parallel"]["group_size"], 256);
  ASSERT_FALSE(j.contains("truncated"));  // 32 hosts still fit once listed once each
  EXPECT_EQ(j["hosts"].size(), 32u);
  EXPECT_EQ(j["ranks_per_host"][0], 8);
  // Without compaction the same record would not fit (the test exercises the limit).
  nlohmann::json full = nlohmann::json::parse(provenance_json(group_of(4, 2)));
  full["hosts"] = group_of(256, 8).hosts;
  EXPECT_GT(full.dump().size(), 2048u);
  // One host per rank, 1024 ranks: still valid, marked truncated.
  const std::string worst = provenance_json(group_of(1024, 1));
  ASSERT_LE(worst.size(), 2048u);
  EXPECT_TRUE(nlohmann::json::parse(worst)["truncated"].get<bool>());
}

}  // namespace
}  // namespace nmech::sweep
