// Optimizer state through an HDF5 file: saved on N ranks, resumed on N (bit-exact on the CPU) and on N-1 ranks (equal
// to rounding) against a run that never stopped; a corrupted file and another model's file are refused by name.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "vesseltune/core/check.h"
#include "vesseltune/checkpoint/optimizer_checkpoint.h"
#include "error_message.h"
#include "hdf5_damage.h"
#include "zero_test_model.h"

using namespace vesseltune;
using namespace vesseltune::testing_support;

namespace {

std::string checkpoint_path(const comm::World& world, const std::string& name) {
  // Rank 0 names the folder, so that every rank agrees on it.
  std::string base = (std::filesystem::temp_directory_path() / ("vt_ckpt_" + std::to_string(::getpid()))).string();
  std::vector<char> text(base.begin(), base.end());
  text.resize(256, '\0');
  MPI_Bcast(text.data(), 256, MPI_CHAR, 0, world.comm);
  base = text.data();
  std::filesystem::create_directories(base);
  return base + "/" + name;
}

// Removes a test's checkpoint and, with the last one, the folder checkpoint_path made.
void remove_checkpoint(const std::string& path) {
  std::filesystem::remove(path);
  std::error_code not_empty;
  std::filesystem::remove(std::filesystem::path(path).parent_path(), not_empty);
}

void create_empty_file(const std::string& path, const comm::World& world) {
  if (world.rank == 0) H5Fclose(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  MPI_Barrier(world.comm);
}

// A checkpoint of one step of the tiny net under CONFIG, written by every rank; its path.
std::string write_one_step_checkpoint(const comm::World& world, comm::Communicator& comm, const ZeroConfig& config,
                                      const std::string& name) {
  const std::string path = checkpoint_path(world, name);
  TinyNet net = make_net(1, comm.device());
  ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(config), config, comm);
  zero_step(net, optimizer, comm, 0, 1);
  create_empty_file(path, world);
  checkpoint::write_optimizer_state(path, optimizer);
  return path;
}

// Offload device and ratio: with a ratio below 1 a rank's state is split between host and device, so its
// canonical spans are cut at another place than on the world it resumes on.
class OptimizerCheckpoint : public testing::TestWithParam<std::pair<OffloadDevice, double>> {};

TEST_P(OptimizerCheckpoint, SaveOnNResumeOnNAndOnFewer) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  ZeroConfig config = zero_config(ZeroSetup{2, GetParam().first, 1, 1.0, GetParam().second});
  // Without weight decay the host leaves the embedding rows not in use out of its update: which rows are in use has
  // to come back from the state, and the resumed net starts from other weights (seed 99) than the saved one.
  config.weight_decay = 0.0;
  const std::string path = checkpoint_path(world, "state.h5");

  auto comm = make_comm(world);
  TinyNet uninterrupted = make_net(1, comm->device());
  ZeroOptimizer optimizer(trainable_parameters(*uninterrupted), default_param_groups(config), config, *comm);
  for (int step = 0; step < 5; ++step) zero_step(uninterrupted, optimizer, *comm, step, 1);
  create_empty_file(path, world);
  checkpoint::write_optimizer_state(path, optimizer);
  for (int step = 5; step < 10; ++step) zero_step(uninterrupted, optimizer, *comm, step, 1);

  {
    TinyNet resumed = make_net(99, comm->device());
    ZeroOptimizer again(trainable_parameters(*resumed), default_param_groups(config), config, *comm);
    checkpoint::read_optimizer_state(path, again);
    EXPECT_EQ(again.step_count(), 5);
    for (int step = 5; step < 10; ++step) zero_step(resumed, again, *comm, step, 1);
    if (comm->device().is_cpu()) {
      const auto want = uninterrupted->named_parameters();
      for (const auto& item : resumed->named_parameters()) {
        EXPECT_TRUE(torch::equal(item.value(), want[item.key()])) << "same-world resume differs in " << item.key();
      }
    } else {  // a GPU sums the embedding's sparse gradient in no fixed order: two runs differ by rounding
      expect_close(resumed, uninterrupted, 1e-6, "same-world resume");
    }
  }

  // The largest smaller world that splits the batch evenly (so that it trains on the same rows): 7 does not.
  int fewer = std::max(1, world.size - 1);
  while (kBatch % fewer != 0) --fewer;
  const comm::World smaller = world.subset(world.rank < fewer);
  if (smaller.comm != MPI_COMM_NULL) {
    auto small_comm = make_comm(smaller);
    TinyNet resumed = make_net(99, small_comm->device());
    ZeroOptimizer again(trainable_parameters(*resumed), default_param_groups(config), config, *small_comm);
    checkpoint::read_optimizer_state(path, again);
    for (int step = 5; step < 10; ++step) zero_step(resumed, again, *small_comm, step, 1);
    expect_close(resumed, uninterrupted, 1e-6, "resumed from the file on " + std::to_string(fewer) + " rank(s)");
  }
  MPI_Barrier(world.comm);
  if (world.rank == 0) remove_checkpoint(path);
}

INSTANTIATE_TEST_SUITE_P(Offload, OptimizerCheckpoint,
                         testing::Values(std::pair{OffloadDevice::cpu, 1.0}, std::pair{OffloadDevice::none, 1.0},
                                         std::pair{OffloadDevice::cpu, 0.5}));

TEST(OptimizerCheckpointFile, CorruptionIsDetectedByTheChecksum) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  const ZeroConfig config = zero_config(ZeroSetup{2, OffloadDevice::cpu, 1, 1.0});
  auto comm = make_comm(world);
  const std::string path = write_one_step_checkpoint(world, *comm, config, "corrupt.h5");
  if (world.rank == 0) {
    // Flip 16 bytes inside the stored chunk of optimizer/exp_avg_sq (the whole tiny state is one chunk).
    const auto [address, bytes] = first_chunk(path, "optimizer/exp_avg_sq");
    EXPECT_GT(bytes, 40u);  // no ASSERT here: the other ranks wait in a collective
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    std::vector<char> data(16);
    file.seekg(static_cast<std::streamoff>(address + 8));
    file.read(data.data(), 16);
    for (char& byte : data) byte = static_cast<char>(~byte);
    file.seekp(static_cast<std::streamoff>(address + 8));
    file.write(data.data(), 16);
  }
  MPI_Barrier(world.comm);
  TinyNet other = make_net(2, comm->device());
  ZeroOptimizer again(trainable_parameters(*other), default_param_groups(config), config, *comm);
  // Every rank fails (the ranks agree before the collective part of loading), naming the file.
  try {
    checkpoint::read_optimizer_state(path, again);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("corrupt.h5"), std::string::npos) << error.what();
  }
  if (world.rank == 0) remove_checkpoint(path);
}

TEST(OptimizerCheckpointFile, NonFiniteValuesThatTheChecksumPassesAreRefusedByTensorName) {
  // A NaN written through HDF5 gets a valid Fletcher-32 checksum, as damage in memory before the write would.
  const auto world = comm::World::of(MPI_COMM_WORLD);
  const ZeroConfig config = zero_config(ZeroSetup{2, OffloadDevice::cpu, 1, 1.0});
  auto comm = make_comm(world);
  const std::string path = write_one_step_checkpoint(world, *comm, config, "nan.h5");
  TinyNet other = make_net(2, comm->device());
  ZeroOptimizer again(trainable_parameters(*other), default_param_groups(config), config, *comm);
  const TensorSlot& last = again.layout().slots().back();  // canonical order: registration order
  if (world.rank == 0) {
    for (const char* field : {"optimizer/exp_avg", "optimizer/master"}) {
      EXPECT_TRUE(overwrite_value<float>(path, field, static_cast<hsize_t>(last.canonical_offset + 1),
                                  std::numeric_limits<float>::quiet_NaN()));
    }
  }
  MPI_Barrier(world.comm);
  // The rank that holds the element names it; a rank whose share of the content hashes covers it names the tensor
  // too; the others name the rank that failed.
  const std::string reading = error_message([&] { checkpoint::read_optimizer_state(path, again); });
  EXPECT_TRUE(reading.find("non-finite value nan in tensor '" + last.name + "' (element 1") != std::string::npos ||
              reading.find("(tensor '" + last.name + "') do not match the content hash") != std::string::npos ||
              reading.find("could not be read on") != std::string::npos)
      << reading;
  const std::string loading = error_message([&] { checkpoint::load_trained_weights(path, *other); });
  EXPECT_NE(loading.find("trained tensor '" + last.name + "' holds 1 non-finite value(s)"), std::string::npos)
      << loading;
  MPI_Barrier(world.comm);
  if (world.rank == 0) remove_checkpoint(path);
}

TEST(OptimizerCheckpointFile, AFiniteChangeThatFletcherPassesFailsTheContentHashNamingTheTensor) {
  // A finite value written through HDF5: its chunk's Fletcher-32 is recomputed and the value is plausible, so only
  // the content hash its writer recorded can tell.
  const auto world = comm::World::of(MPI_COMM_WORLD);
  const ZeroConfig config = zero_config(ZeroSetup{2, OffloadDevice::cpu, 1, 1.0});
  auto comm = make_comm(world);
  const std::string path = write_one_step_checkpoint(world, *comm, config, "changed.h5");
  TinyNet other = make_net(2, comm->device());
  ZeroOptimizer again(trainable_parameters(*other), default_param_groups(config), config, *comm);
  const TensorSlot& last = again.layout().slots().back();
  if (world.rank == 0) {
    EXPECT_TRUE(overwrite_value<float>(path, "optimizer/master", static_cast<hsize_t>(last.canonical_offset + 1), 0.25f));
  }
  MPI_Barrier(world.comm);
  EXPECT_THROW(checkpoint::read_optimizer_state(path, again), checkpoint::UnreadableCheckpoint);
  const std::string loading = error_message([&] { checkpoint::load_trained_weights(path, *other); });
  EXPECT_NE(loading.find("(tensor '" + last.name + "') do not match the content hash"), std::string::npos) << loading;
  MPI_Barrier(world.comm);
  if (world.rank == 0) remove_checkpoint(path);
}

}  // namespace
