// MPI backend collectives against values computed by hand: rank r contributes (r + 1) * (i + 1) at index i.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "vesseltune/comm/launch.h"
#include "vesseltune/comm/fingerprint.h"
#include "vesseltune/comm/sparse_rows.h"
#include "vesseltune/core/check.h"

using namespace vesseltune;

namespace {

std::unique_ptr<comm::Communicator> make_mpi() {
  return comm::make_communicator(comm::World::of(MPI_COMM_WORLD), comm::Backend::mpi, std::chrono::seconds(60));
}

at::Tensor contribution(int rank, int64_t n, at::ScalarType dtype) {
  return (at::arange(1, n + 1, at::kDouble) * (rank + 1)).to(dtype);
}

// sum over ranks of (r + 1) = W (W + 1) / 2
double rank_sum(int world) { return world * (world + 1) / 2.0; }

class Collectives : public testing::TestWithParam<at::ScalarType> {};

TEST_P(Collectives, AllReduceSums) {
  auto comm = make_mpi();
  at::Tensor t = contribution(comm->rank(), 10, GetParam());
  comm->all_reduce(t, "test all-reduce");
  const at::Tensor expected = at::arange(1, 11, at::kDouble) * rank_sum(comm->size());
  EXPECT_TRUE(at::equal(t.to(at::kDouble), expected)) << t;
}

TEST_P(Collectives, ReduceScatterGivesEachRankItsChunkOfTheSum) {
  auto comm = make_mpi();
  const int64_t chunk = 3;
  at::Tensor input = contribution(comm->rank(), chunk * comm->size(), GetParam());
  at::Tensor output = at::zeros({chunk}, GetParam());
  comm->reduce_scatter(input, output, "test reduce-scatter");
  const at::Tensor expected = at::arange(comm->rank() * chunk + 1, (comm->rank() + 1) * chunk + 1, at::kDouble) *
                              rank_sum(comm->size());
  EXPECT_TRUE(at::equal(output.to(at::kDouble), expected)) << output;
}

TEST_P(Collectives, AllGatherInPlaceAndOutOfPlace) {
  auto comm = make_mpi();
  const int64_t chunk = 4;
  at::Tensor expected = at::empty({chunk * comm->size()}, at::kDouble);
  for (int r = 0; r < comm->size(); ++r) expected.narrow(0, r * chunk, chunk).fill_(r + 1);

  at::Tensor separate = at::full({chunk}, comm->rank() + 1, GetParam());
  at::Tensor gathered = at::zeros({chunk * comm->size()}, GetParam());
  comm->all_gather(separate, gathered, "test all-gather");
  EXPECT_TRUE(at::equal(gathered.to(at::kDouble), expected));

  at::Tensor buffer = at::zeros({chunk * comm->size()}, GetParam());
  at::Tensor mine = buffer.narrow(0, comm->rank() * chunk, chunk);
  mine.fill_(comm->rank() + 1);
  comm->all_gather(mine, buffer, "test all-gather in place");
  EXPECT_TRUE(at::equal(buffer.to(at::kDouble), expected));
}

TEST_P(Collectives, BroadcastFromLastRank) {
  auto comm = make_mpi();
  const int root = comm->size() - 1;
  at::Tensor t = contribution(comm->rank(), 5, GetParam());
  comm->broadcast(t, root, "test broadcast");
  EXPECT_TRUE(at::equal(t.to(at::kDouble), at::arange(1, 6, at::kDouble) * (root + 1)));
  comm->barrier("test barrier");
}

// Rank r writes (r + 1) * (i + 1) * (c + 1) into row i, column c of the rows it lists: rank 0 rows 0, 3 and 0 again
// (a token used twice), odd ranks none, other even ranks rows r mod 7 and 5. The sum is computed here row by row.
TEST_P(Collectives, AllReduceRowsSumsTheListedRowsOfEveryRank) {
  if (GetParam() == at::kLong) GTEST_SKIP() << "gradients are floating point";
  auto comm = make_mpi();
  constexpr int64_t kColumns = 3;
  // Rank 0 lists row 0 twice (a sparse gradient's repeats are summed); odd ranks list none.
  const auto listed_by = [](int r) -> std::vector<int64_t> {
    if (r == 0) return {0, 3, 0};
    if (r % 2 == 1) return {};
    return {r % 7, 5};
  };
  const auto value = [](int r, size_t k, int64_t c) { return (r + 1.0) * (k + 1.0) * (c + 1.0); };
  const std::vector<int64_t> mine = listed_by(comm->rank());
  at::Tensor values = at::zeros({static_cast<int64_t>(mine.size()), kColumns}, GetParam());
  for (size_t k = 0; k < mine.size(); ++k) {
    for (int64_t c = 0; c < kColumns; ++c) values[k][c] = value(comm->rank(), k, c);
  }
  std::map<int64_t, std::vector<double>> expected;  // sorted by row
  for (int r = 0; r < comm->size(); ++r) {
    const std::vector<int64_t> rows = listed_by(r);
    for (size_t k = 0; k < rows.size(); ++k) {
      auto& sum = expected.try_emplace(rows[k], kColumns, 0.0).first->second;
      for (int64_t c = 0; c < kColumns; ++c) sum[c] += value(r, k, c);
    }
  }
  const comm::SummedRows summed =
      comm::all_reduce_rows(*comm, at::tensor(mine, at::kLong), values, kColumns, "test rows");
  ASSERT_EQ(summed.rows.numel(), static_cast<int64_t>(expected.size()));
  int64_t i = 0;
  for (const auto& [row, sum] : expected) {
    EXPECT_EQ(summed.rows[i].item<int64_t>(), row);
    for (int64_t c = 0; c < kColumns; ++c) EXPECT_EQ(summed.sums[i][c].item<double>(), sum[c]) << "row " << row;
    ++i;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Collectives, testing::Values(at::kFloat, at::kBFloat16, at::kDouble, at::kLong));

TEST(Collectives, Bf16SumRoundsToNearestEven) {
  auto comm = make_mpi();
  if (comm->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  // 256 + 1 is not a bf16 (8 significant bits): rank 0 gives 256, rank 1 gives 1, others 0. The sum 257 lies
  // halfway between 256 and 258 and rounds to the even 256; 256 + 3 = 259 rounds to 260.
  at::Tensor t = at::zeros({2}, at::kBFloat16);
  if (comm->rank() == 0) t.fill_(256);
  if (comm->rank() == 1) t.copy_(at::tensor({1.0, 3.0}).to(at::kBFloat16));
  comm->all_reduce(t, "bf16 rounding");
  EXPECT_EQ(t[0].item<float>(), 256.0f);
  EXPECT_EQ(t[1].item<float>(), 260.0f);
}

TEST(Collectives, WrongSizesAreRefusedWithTheOperationName) {
  auto comm = make_mpi();
  at::Tensor input = at::zeros({comm->size() * 3 + 1});
  at::Tensor output = at::zeros({3});
  try {
    comm->reduce_scatter(input, output, "reduce-scatter bucket 7");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("reduce-scatter bucket 7"), std::string::npos) << error.what();
  }
  at::Tensor int32 = at::zeros({2}, at::kInt);
  EXPECT_THROW(comm->all_reduce(int32, "int32"), Error);
}

// Host collectives: rank r contributes r + 1 (and values derived from it) in every case below.
TEST(HostCollectives, AllReduceSumMaxMin) {
  auto comm = make_mpi();
  const int r = comm->rank(), w = comm->size();
  std::vector<double> totals{r + 1.0, 0.5 * (r + 1)};
  comm->all_reduce_host(totals, comm::Communicator::Reduction::sum, "test totals");
  EXPECT_EQ(totals, (std::vector<double>{rank_sum(w), 0.5 * rank_sum(w)}));
  std::vector<int64_t> largest{r + 1, -(r + 1)};
  comm->all_reduce_host(largest, comm::Communicator::Reduction::max, "test max");
  EXPECT_EQ(largest, (std::vector<int64_t>{w, -1}));
  std::vector<uint8_t> flags{static_cast<uint8_t>(r == w - 1), 0};
  comm->all_reduce_host(flags, comm::Communicator::Reduction::max, "test flags");
  EXPECT_EQ(flags, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(comm->all_reduce_host(r + 1.0, comm::Communicator::Reduction::min, "test min"), 1.0);
}

TEST(HostCollectives, AllGatherInRankOrderAndACountMismatchNamesTheRank) {
  auto comm = make_mpi();
  const int r = comm->rank(), w = comm->size();
  const std::vector<double> all = comm->all_gather_host(std::vector<double>{r + 1.0, -(r + 1.0)}, "test gather");
  ASSERT_EQ(all.size(), static_cast<size_t>(2 * w));
  for (int k = 0; k < w; ++k) EXPECT_EQ(all[2 * k], k + 1.0) << "rank " << k;
  if (w < 2) return;
  const std::vector<uint64_t> uneven(r == w - 1 ? 3 : 2, 7);
  try {
    comm->all_gather_host(uneven, "test uneven gather");
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("test uneven gather: rank " + std::to_string(r == w - 1 ? 0 : w - 1)), std::string::npos)
        << message;
  }
}

TEST(HostCollectives, GatherOfVariableSizesOnTheRoot) {
  auto comm = make_mpi();
  const int r = comm->rank(), w = comm->size(), root = w - 1;
  const std::vector<char> mine(static_cast<size_t>(r + 1), static_cast<char>('a' + r));  // "a", "bb", "ccc", ...
  const std::vector<char> all = comm->gather_host(mine, root, "test gather to root");
  std::string expected;
  for (int k = 0; k < w; ++k) expected += std::string(static_cast<size_t>(k + 1), static_cast<char>('a' + k));
  EXPECT_EQ(std::string(all.begin(), all.end()), r == root ? expected : "");
}

TEST(HostCollectives, BroadcastResizesTheReceivers) {
  auto comm = make_mpi();
  const int root = comm->size() - 1;
  std::vector<char> text;
  if (comm->rank() == root) text = {'s', 't', 'e', 'p'};
  comm->broadcast_host(text, root, "test broadcast");
  EXPECT_EQ(std::string(text.begin(), text.end()), "step");
}

TEST(HostCollectives, FirstFailedRankIsTheLowestThatFailed) {
  auto comm = make_mpi();
  const int w = comm->size();
  EXPECT_EQ(comm->first_failed_rank(false, "test none failed"), -1);
  EXPECT_EQ(comm->first_failed_rank(comm->rank() >= w / 2, "test half failed"), w / 2);
}

TEST(Fingerprint, EqualFieldsPass) {
  auto comm = make_mpi();
  comm::Fingerprint fingerprint;
  fingerprint.add("config", "lr=1e-4");
  fingerprint.add("trainable tensors", "a:[2,3]:bf16");
  EXPECT_NO_THROW(comm::verify_fingerprint(*comm, fingerprint));
}

TEST(Fingerprint, MismatchThrowsOnEveryRankNamingRankAndField) {
  auto comm = make_mpi();
  const comm::World& world = comm->world();
  if (world.size < 2) GTEST_SKIP() << "needs 2 ranks";
  comm::Fingerprint fingerprint;
  fingerprint.add("config", "lr=1e-4");
  fingerprint.add("bucket layout", world.rank == world.size - 1 ? "bucket 0: 12" : "bucket 0: 10");
  try {
    comm::verify_fingerprint(*comm, fingerprint);
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("fingerprint mismatch: rank " + std::to_string(world.size - 1)), std::string::npos) << message;
    EXPECT_NE(message.find("'bucket layout'"), std::string::npos) << message;
  }
}

TEST(Fingerprint, HashIsFnv1a) {
  // Reference values of 64-bit FNV-1a.
  EXPECT_EQ(comm::stable_hash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(comm::stable_hash("a"), 0xaf63dc4c8601ec8cull);
}

TEST(World, LocalRanksAndHosts) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  EXPECT_EQ(static_cast<int>(world.hosts.size()), world.size);
  EXPECT_EQ(world.hosts[world.rank], world.host);
  EXPECT_LT(world.local_rank, world.local_size);
  // All ranks of a CI run share one host.
  EXPECT_EQ(world.local_size, world.size);
  EXPECT_EQ(world.local_rank, world.rank);
}

}  // namespace
