// Data-parallel training across processes: a c10d process group (TCPStore rendezvous, Gloo on the
// CPU, NCCL on CUDA builds) and the collectives the training step needs. libtorch's C++ API has
// no DistributedDataParallel, so the gradient all-reduce lives here: bucketed, summed, divided by
// the world size.
//
// The engine calls `Group::allReduceMean` directly on its gradient tensors after each backward;
// JavaScript holds a `ProcessGroup` object (src/distributed/group.ts wraps it) and gets the
// group behind it with `ProcessGroup::From`.
//
// Built only when c10d's Gloo headers are there (Debian's libgloo-dev, or a libtorch that ships
// them): native/build.mjs then defines CELEBA_GAN_DIST. Without them the addon still loads and
// `dist.available` is false, with the reason.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cgt {
namespace dist {

/**
 * A failure JavaScript turns into a CelebaGanError: `code` is E_DIST_RENDEZVOUS, E_DIST_TIMEOUT,
 * E_DIST_UNAVAILABLE or E_DIST_BAD_CALL; `lostRank` is the rank that left or fell behind, -1
 * when it cannot be known.
 */
struct DistError : std::runtime_error {
  DistError(std::string code, const std::string& message, int lostRank = -1)
      : std::runtime_error(message), code(std::move(code)), lostRank(lostRank) {}
  std::string code;
  int lostRank;
};

struct GroupOptions {
  int rank = 0;
  int worldSize = 1;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  /** Each collective fails after this long. */
  std::chrono::milliseconds timeout{60000};
  /** The rendezvous gives up after this long; 0: `timeout`. */
  std::chrono::milliseconds rendezvousTimeout{0};
  /** `gloo` or `nccl` (the latter only in a CUDA build with USE_C10D_NCCL). */
  std::string backend = "gloo";
  /** nccl: the CUDA device index of this rank (LOCAL_RANK). */
  int deviceIndex = 0;
  /** Rank 0 hosts the TCPStore, unless a launcher's agent already does (torchrun's static
   *  rendezvous: TORCHELASTIC_USE_AGENT_STORE=True), in which case every rank is a client. */
  bool agentStore = false;
  /** Prefix of every key (torchrun: `/worker/attempt_<restart count>/`). */
  std::string storePrefix;
};

/** Gradients are all-reduced in buckets of about this many bytes, as PyTorch's DDP does. */
constexpr size_t kBucketBytes = 25u << 20;

class GroupImpl;

class Group {
 public:
  /** Rendezvous with the other ranks; rank 0 hosts the TCPStore. Throws DistError. */
  static std::shared_ptr<Group> create(const GroupOptions& opts);
  ~Group();

  int rank() const;
  int worldSize() const;
  const std::string& backend() const;

  /**
   * In place: afterwards every tensor holds the mean over the ranks of its values. Tensors are
   * flattened into buckets of at most `bucketBytes` (a larger tensor is its own bucket), each
   * bucket is all-reduced (sum) and divided by the world size, then copied back.
   */
  void allReduceMean(std::vector<torch::Tensor>& tensors, size_t bucketBytes = kBucketBytes);
  /** In place: every rank's tensors become rank `root`'s. */
  void broadcast(std::vector<torch::Tensor>& tensors, int root);
  void barrier();
  /** Every rank's bytes (all of the same length), in rank order. */
  std::vector<std::vector<uint8_t>> allGatherBytes(const std::vector<uint8_t>& mine);
  /** Leaves the group (tells the others' diagnosis this rank closed rather than died). */
  void close();

 private:
  explicit Group(std::unique_ptr<GroupImpl> impl);
  std::unique_ptr<GroupImpl> impl_;
};

/** The JavaScript object holding a group (`dist.createGroup` resolves with one). */
class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ProcessGroup(const Napi::CallbackInfo& info);
  /** The group behind a JavaScript ProcessGroup, for native callers such as the engine. */
  static std::shared_ptr<Group> From(Napi::Env env, const Napi::Value& value);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<Group> group);

 private:
  std::shared_ptr<Group> group_;
  std::shared_ptr<Group> live(Napi::Env env);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value AllGather(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

/** The `dist` export: { available, reason, backends, createGroup(opts), ProcessGroup }. */
Napi::Object Define(Napi::Env env);

}  // namespace dist
}  // namespace cgt
