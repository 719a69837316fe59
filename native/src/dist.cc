#include "dist.h"
#include "task.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#ifdef CELEBA_GAN_DIST
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace cgt {
namespace dist {

namespace {

/** libtorch's message without its C++ backtrace or final full stop (ours follow it). */
[[maybe_unused]] std::string messageOf(const std::exception& e) {
  auto c10 = dynamic_cast<const c10::Error*>(&e);
  std::string m = c10 ? c10->what_without_backtrace() : e.what();
  while (!m.empty() && (m.back() == '.' || m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

[[maybe_unused]] std::string seconds(std::chrono::milliseconds ms) {
  std::ostringstream s;
  s << (ms.count() / 1000.0) << " s";
  return s.str();
}

}  // namespace

#ifdef CELEBA_GAN_DIST

// c10d's process groups became "backends" of a ProcessGroup wrapper in libtorch 2.0; the
// collectives used here have the same signatures on both.
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

namespace {

/** What the heartbeat thread publishes: a tick that stops when the process dies, and how many
 *  collectives this rank has entered (to say who fell behind on a timeout). */
struct Beat {
  int64_t tick = 0;
  uint64_t seq = 0;
  bool closed = false;
};

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string stringOf(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

bool isLoopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

}  // namespace

class GroupImpl {
 public:
  GroupOptions opts;
  c10::intrusive_ptr<c10d::TCPStore> store;      // rendezvous + diagnosis
  c10::intrusive_ptr<c10d::TCPStore> beatStore;  // the heartbeat thread's own connection
  c10::intrusive_ptr<PgBase> pg;
  torch::Device device{torch::kCPU};
  std::mutex mutex;  // one collective at a time, in the same order on every rank
  std::atomic<uint64_t> seq{0};
  bool closed = false;
  std::optional<DistError> broken;  // after a failure every call repeats it
  std::chrono::milliseconds beatInterval{1000};
  std::thread beatThread;
  std::mutex beatMutex;
  std::condition_variable beatWake;
  bool beatStop = false;
  bool beatClosed = false;

  ~GroupImpl() {
    stopHeartbeat(false);
    // A group whose collective failed may still have a Gloo thread inside the failed
    // operation; destroying it would block until that operation's own timeout. The process is
    // about to report the failure and exit, so let it go.
    if (broken && pg) pg.release();
  }

  std::string key(const std::string& k) const { return opts.storePrefix + "cgt/" + k; }
  std::string host() const { return opts.agentStore ? "the launcher's agent" : "rank 0"; }
  std::string beatKey(int r) const { return key("beat/" + std::to_string(r)); }

  void rendezvous();
  void startHeartbeat();
  void stopHeartbeat(bool publishClosed);
  std::optional<std::vector<Beat>> readBeats();
  DistError diagnose(const std::string& what, uint64_t n, const std::string& cause);

  template <typename F>
  void collective(const std::string& what, F&& fn) {
    std::lock_guard<std::mutex> lock(mutex);
    if (closed) throw DistError("E_DIST_BAD_CALL", what + " on a closed process group");
    if (broken) throw *broken;
    uint64_t n = ++seq;
    try {
      fn();
    } catch (const DistError&) {
      throw;
    } catch (const std::exception& e) {
      broken = diagnose(what, n, messageOf(e));
      throw *broken;
    }
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work) { work->wait(opts.timeout); }
};

void GroupImpl::rendezvous() {
  const std::string where = opts.masterAddr + ":" + std::to_string(opts.masterPort);
  const std::chrono::milliseconds limit = opts.rendezvousTimeout.count() > 0 ? opts.rendezvousTimeout : opts.timeout;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  auto remaining = [&]() {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(1));
  };

  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(opts.masterPort);
  so.isServer = opts.rank == 0 && !opts.agentStore;
  so.waitWorkers = false;  // joining is checked below, rank by rank, to name who is missing
  so.timeout = limit;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(opts.masterAddr, so);
  } catch (const std::exception& e) {
    if (so.isServer) {
      throw DistError("E_DIST_RENDEZVOUS", "rank 0 could not host the rendezvous store on " + where + ": " + messageOf(e) +
                                               ". Is the port taken by another process? Choose another MASTER_PORT (or let --nproc pick a free one).");
    }
    throw DistError("E_DIST_RENDEZVOUS", "rank " + std::to_string(opts.rank) + " could not reach the rendezvous store at " + where +
                                              " within " + seconds(limit) + " (" + host() + " hosts it): " + messageOf(e) +
                                             ". Check MASTER_ADDR/MASTER_PORT and that " + host() + " is running.", opts.agentStore ? -1 : 0);
  }

  const std::string n = std::to_string(opts.worldSize);
  if (opts.rank == 0) {
    store->set(key("world_size"), bytesOf(n));
    if (store->add(key("claim/0"), 1) > 1) {
      throw DistError("E_DIST_RENDEZVOUS", "two processes claim rank 0 at " + where + ": each rank must have its own RANK");
    }
    std::string failure;
    int lost = -1;
    for (int r = 1; r < opts.worldSize && failure.empty(); r++) {
      std::string answer;
      try {
        store->wait({key("join/" + std::to_string(r))}, remaining());
        answer = stringOf(store->get(key("join/" + std::to_string(r))));
      } catch (const std::exception&) {
        failure = "rank " + std::to_string(r) + " did not join at " + where + " within " + seconds(limit) +
                  " (WORLD_SIZE=" + n + "). Was it started, with the same MASTER_ADDR and MASTER_PORT?";
        lost = r;
        break;
      }
      if (answer != "ok") failure = "rank " + std::to_string(r) + " " + answer + "; rank 0 has WORLD_SIZE=" + n + ". Every rank must be started with the same WORLD_SIZE.";
    }
    store->set(key("ready"), bytesOf(failure.empty() ? "ok" : failure));
    if (!failure.empty()) throw DistError("E_DIST_RENDEZVOUS", failure, lost);
  } else {
    std::string theirs;
    try {
      store->wait({key("world_size")}, remaining());
      theirs = stringOf(store->get(key("world_size")));
    } catch (const std::exception& e) {
      throw DistError("E_DIST_RENDEZVOUS", "rank " + std::to_string(opts.rank) + " reached " + where +
                                               " but rank 0 did not publish the world size within " + seconds(limit) + ": " + messageOf(e), 0);
    }
    const std::string me = "rank " + std::to_string(opts.rank);
    if (theirs != n) {
      std::string why = "has WORLD_SIZE=" + n;
      store->set(key("join/" + std::to_string(opts.rank)), bytesOf(why));
      throw DistError("E_DIST_RENDEZVOUS", "WORLD_SIZE mismatch at " + where + ": " + me + " has WORLD_SIZE=" + n + ", rank 0 has WORLD_SIZE=" + theirs +
                                               ". Every rank must be started with the same WORLD_SIZE.");
    }
    if (store->add(key("claim/" + std::to_string(opts.rank)), 1) > 1) {
      store->set(key("join/" + std::to_string(opts.rank)), bytesOf("is claimed by two processes"));
      throw DistError("E_DIST_RENDEZVOUS", "two processes claim " + me + " at " + where + ": each rank must have its own RANK");
    }
    store->set(key("join/" + std::to_string(opts.rank)), bytesOf("ok"));
    std::string ready;
    try {
      store->wait({key("ready")}, remaining());
      ready = stringOf(store->get(key("ready")));
    } catch (const std::exception& e) {
      throw DistError("E_DIST_RENDEZVOUS", me + " joined at " + where + " but the group was not complete within " + seconds(limit) + ": " + messageOf(e));
    }
    if (ready != "ok") throw DistError("E_DIST_RENDEZVOUS", "rank 0 gave up the rendezvous at " + where + ": " + ready);
  }

  auto pgStore = c10::make_intrusive<c10d::PrefixStore>(key("pg"), store);
  try {
    if (opts.backend == "gloo") {
      // Connecting the mesh is part of the rendezvous; each collective passes its own timeout.
      auto o = c10d::ProcessGroupGloo::Options::create(limit);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (isLoopback(opts.masterAddr)) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      o->threads = 2;
      pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pgStore, opts.rank, opts.worldSize, o);
    } else {
#ifdef USE_C10D_NCCL
      device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(opts.deviceIndex));
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = opts.timeout;
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(pgStore, opts.rank, opts.worldSize, o);
#else
      throw DistError("E_DIST_UNAVAILABLE", "the nccl backend needs the addon built against a CUDA libtorch with NCCL (USE_C10D_NCCL)");
#endif
    }
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistError("E_DIST_RENDEZVOUS", "rank " + std::to_string(opts.rank) + " could not connect the " + opts.backend + " process group: " + messageOf(e));
  }
}

void GroupImpl::startHeartbeat() {
  beatInterval = std::clamp(opts.timeout / 8, std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(opts.masterPort);
  so.isServer = false;
  so.waitWorkers = false;
  so.timeout = opts.timeout;
  beatStore = c10::make_intrusive<c10d::TCPStore>(opts.masterAddr, so);
  auto publish = [this](int64_t tick, bool closing) {
    std::string v = std::to_string(tick) + " " + std::to_string(seq.load()) + (closing ? " closed" : "");
    beatStore->set(beatKey(opts.rank), bytesOf(v));
  };
  publish(0, false);
  beatThread = std::thread([this, publish]() {
    int64_t tick = 0;
    std::unique_lock<std::mutex> lock(beatMutex);
    while (!beatStop) {
      beatWake.wait_for(lock, beatInterval, [this] { return beatStop; });
      if (beatStop) break;
      try {
        publish(++tick, false);
      } catch (const std::exception&) {
        return;  // the store (rank 0) is gone; the next collective reports it
      }
    }
    if (beatClosed) {
      try {
        publish(++tick, true);
      } catch (const std::exception&) {
      }
    }
  });
}

void GroupImpl::stopHeartbeat(bool publishClosed) {
  {
    std::lock_guard<std::mutex> lock(beatMutex);
    beatStop = true;
    beatClosed = publishClosed;
  }
  beatWake.notify_all();
  if (beatThread.joinable()) beatThread.join();
}

std::optional<std::vector<Beat>> GroupImpl::readBeats() {
  std::vector<Beat> beats(opts.worldSize);
  try {
    for (int r = 0; r < opts.worldSize; r++) {
      std::istringstream in(stringOf(store->get(beatKey(r))));
      std::string state;
      in >> beats[r].tick >> beats[r].seq >> state;
      beats[r].closed = state == "closed";
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return beats;
}

DistError GroupImpl::diagnose(const std::string& what, uint64_t n, const std::string& cause) {
  const std::string me = "rank " + std::to_string(opts.rank);
  const std::string op = what + " #" + std::to_string(n);
  const std::string tail = " (" + opts.backend + ": " + cause + ")";
  auto first = readBeats();
  if (!first && opts.agentStore) {
    return DistError("E_DIST_TIMEOUT", me + " cannot reach the launcher's rendezvous store (did the launcher stop?); " + op + " failed" + tail);
  }
  if (!first && opts.rank != 0) {
    return DistError("E_DIST_TIMEOUT", "lost rank 0: " + me + " cannot reach the rendezvous store rank 0 hosts, so rank 0 died or was killed; " + op + " failed" + tail, 0);
  }
  if (first) {
    // Long enough for a live rank to publish at least twice even on a busy machine.
    std::this_thread::sleep_for(beatInterval * 3 + std::chrono::milliseconds(500));
    auto second = readBeats();
    if (!second && opts.rank != 0 && !opts.agentStore) {
      return DistError("E_DIST_TIMEOUT", "lost rank 0: it stopped serving the rendezvous store during " + op + tail, 0);
    }
    if (second) {
      for (int r = 0; r < opts.worldSize; r++) {
        if (r == opts.rank) continue;
        if ((*second)[r].closed) {
          return DistError("E_DIST_TIMEOUT", "lost rank " + std::to_string(r) + ": it closed its process group while " + me + " was in " + op + tail, r);
        }
        if ((*second)[r].tick == (*first)[r].tick) {
          return DistError("E_DIST_TIMEOUT", "lost rank " + std::to_string(r) + ": its heartbeat stopped (the process died or was killed) while " + me + " was in " + op + tail, r);
        }
      }
      for (int r = 0; r < opts.worldSize; r++) {
        if (r != opts.rank && (*second)[r].seq < n) {
          return DistError("E_DIST_TIMEOUT", "rank " + std::to_string(r) + " did not reach " + op + " within " + seconds(opts.timeout) + " (it is alive, at collective #" +
                                                 std::to_string((*second)[r].seq) + ")" + tail, r);
        }
      }
    }
  }
  return DistError("E_DIST_TIMEOUT", me + ": " + op + " failed and no rank could be named as lost" + tail);
}

std::shared_ptr<Group> Group::create(const GroupOptions& opts) {
  if (opts.worldSize < 1) throw DistError("E_DIST_BAD_CALL", "worldSize must be >= 1, got " + std::to_string(opts.worldSize));
  if (opts.rank < 0 || opts.rank >= opts.worldSize) {
    throw DistError("E_DIST_BAD_CALL", "rank must be in [0, " + std::to_string(opts.worldSize - 1) + "], got " + std::to_string(opts.rank));
  }
  if (opts.masterPort < 1 || opts.masterPort > 65535) throw DistError("E_DIST_BAD_CALL", "masterPort must be in [1, 65535], got " + std::to_string(opts.masterPort));
  if (opts.timeout.count() < 1) throw DistError("E_DIST_BAD_CALL", "timeout must be >= 1 ms");
  if (opts.backend != "gloo" && opts.backend != "nccl") throw DistError("E_DIST_BAD_CALL", "backend must be gloo or nccl, got " + opts.backend);
  auto impl = std::make_unique<GroupImpl>();
  impl->opts = opts;
  impl->rendezvous();
  impl->startHeartbeat();
  // Every heartbeat key exists once all ranks pass this barrier (still the rendezvous: its limit).
  const std::chrono::milliseconds limit = opts.rendezvousTimeout.count() > 0 ? opts.rendezvousTimeout : opts.timeout;
  try {
    c10d::BarrierOptions bo;
    bo.timeout = limit;
    impl->pg->barrier(bo)->wait(limit);
  } catch (const std::exception& e) {
    throw DistError("E_DIST_RENDEZVOUS", "rank " + std::to_string(opts.rank) + " connected the " + opts.backend + " process group but the first barrier failed within " +
                                             seconds(limit) + ": " + messageOf(e));
  }
  return std::shared_ptr<Group>(new Group(std::move(impl)));
}

Group::Group(std::unique_ptr<GroupImpl> impl) : impl_(std::move(impl)) {}
Group::~Group() = default;
int Group::rank() const { return impl_->opts.rank; }
int Group::worldSize() const { return impl_->opts.worldSize; }
const std::string& Group::backend() const { return impl_->opts.backend; }

void Group::allReduceMean(std::vector<torch::Tensor>& tensors, size_t bucketBytes) {
  auto& g = *impl_;
  g.collective("allReduce", [&]() {
    if (g.opts.worldSize == 1) return;
    // Buckets of consecutive tensors sharing dtype and device, up to bucketBytes each.
    std::vector<std::vector<size_t>> buckets;
    size_t bytes = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
      const auto& t = tensors[i];
      size_t b = t.numel() * t.element_size();
      bool fits = !buckets.empty() && bytes + b <= bucketBytes && tensors[buckets.back().front()].scalar_type() == t.scalar_type() &&
                  tensors[buckets.back().front()].device() == t.device();
      if (!fits) {
        buckets.emplace_back();
        bytes = 0;
      }
      buckets.back().push_back(i);
      bytes += b;
    }
    std::vector<torch::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::AllreduceOptions ao;
    ao.reduceOp = c10d::ReduceOp::SUM;
    ao.timeout = g.opts.timeout;
    for (const auto& bucket : buckets) {
      std::vector<torch::Tensor> parts;
      for (size_t i : bucket) parts.push_back(tensors[i].detach().reshape({-1}).to(g.device));
      std::vector<torch::Tensor> one{parts.size() == 1 ? parts[0].contiguous().clone() : torch::cat(parts)};
      works.push_back(g.pg->allreduce(one, ao));
      flats.push_back(one[0]);
    }
    for (size_t k = 0; k < buckets.size(); k++) {
      g.wait(works[k]);
      torch::Tensor flat = flats[k].div_(g.opts.worldSize);
      int64_t offset = 0;
      torch::NoGradGuard noGrad;
      for (size_t i : buckets[k]) {
        auto& t = tensors[i];
        t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
        offset += t.numel();
      }
    }
  });
}

void Group::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  auto& g = *impl_;
  if (root < 0 || root >= g.opts.worldSize) throw DistError("E_DIST_BAD_CALL", "broadcast root must be a rank in [0, " + std::to_string(g.opts.worldSize - 1) + "]");
  g.collective("broadcast", [&]() {
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    bo.timeout = g.opts.timeout;
    torch::NoGradGuard noGrad;
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{t.detach().to(g.device).contiguous().clone()};
      g.wait(g.pg->broadcast(one, bo));
      t.copy_(one[0].view(t.sizes()));
    }
  });
}

void Group::barrier() {
  auto& g = *impl_;
  g.collective("barrier", [&]() {
    c10d::BarrierOptions bo;
    bo.timeout = g.opts.timeout;
    g.wait(g.pg->barrier(bo));
  });
}

std::vector<std::vector<uint8_t>> Group::allGatherBytes(const std::vector<uint8_t>& mine) {
  auto& g = *impl_;
  std::vector<std::vector<uint8_t>> out;
  g.collective("allGather", [&]() {
    auto opt = torch::TensorOptions().dtype(torch::kUInt8);
    std::vector<torch::Tensor> input{torch::from_blob(const_cast<uint8_t*>(mine.data()), {static_cast<int64_t>(mine.size())}, opt).clone().to(g.device)};
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < g.opts.worldSize; r++) outputs[0].push_back(torch::empty({static_cast<int64_t>(mine.size())}, opt.device(g.device)));
    c10d::AllgatherOptions ao;
    ao.timeout = g.opts.timeout;
    g.wait(g.pg->allgather(outputs, input, ao));
    for (auto& t : outputs[0]) {
      torch::Tensor c = t.to(torch::kCPU).contiguous();
      out.emplace_back(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
    }
  });
  return out;
}

void Group::close() {
  auto& g = *impl_;
  std::lock_guard<std::mutex> lock(g.mutex);
  if (g.closed) return;
  g.closed = true;
  g.stopHeartbeat(true);
}

static constexpr bool kAvailable = true;
static const char* kReason = "";

#else  // !CELEBA_GAN_DIST

class GroupImpl {};

static constexpr bool kAvailable = false;
static const char* kReason =
    "the addon was built without c10d's Gloo headers (Debian: apt-get install libgloo-dev, then npm run build:native)";

std::shared_ptr<Group> Group::create(const GroupOptions&) { throw DistError("E_DIST_UNAVAILABLE", kReason); }
Group::Group(std::unique_ptr<GroupImpl> impl) : impl_(std::move(impl)) {}
Group::~Group() = default;
int Group::rank() const { return 0; }
int Group::worldSize() const { return 1; }
const std::string& Group::backend() const {
  static const std::string none = "none";
  return none;
}
void Group::allReduceMean(std::vector<torch::Tensor>&, size_t) { throw DistError("E_DIST_UNAVAILABLE", kReason); }
void Group::broadcast(std::vector<torch::Tensor>&, int) { throw DistError("E_DIST_UNAVAILABLE", kReason); }
void Group::barrier() { throw DistError("E_DIST_UNAVAILABLE", kReason); }
std::vector<std::vector<uint8_t>> Group::allGatherBytes(const std::vector<uint8_t>&) { throw DistError("E_DIST_UNAVAILABLE", kReason); }
void Group::close() {}

#endif  // CELEBA_GAN_DIST

// ---------------------------------------------------------------------------------------------
// JavaScript side

namespace {

Napi::Error jsError(Napi::Env env, const std::string& code, const std::string& message, int lostRank) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  if (lostRank >= 0) e.Set("lostRank", Napi::Number::New(env, lostRank));
  return e;
}


template <typename R>
Napi::Promise queue(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done) {
  // Collectives block: off the JS thread. Anything but a DistError is E_DIST_FAILED.
  auto* task = new Task<R>(env, std::move(work), std::move(done), messageOf, "E_DIST_FAILED");
  Napi::Promise p = task->Promise();
  task->Queue();
  return p;
}

Napi::Error badCall(Napi::Env env, const std::string& message) { return jsError(env, "E_DIST_BAD_CALL", message, -1); }

/** Copies of a list of Float32Arrays as CPU tensors (the JS buffers may move or be freed). */
std::vector<torch::Tensor> floatList(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw badCall(env, std::string(what) + " must be an array of Float32Arrays");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<torch::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsTypedArray() || x.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw badCall(env, std::string(what) + "[" + std::to_string(i) + "] must be a Float32Array");
    }
    Napi::Float32Array f = x.As<Napi::Float32Array>();
    out.push_back(torch::from_blob(f.Data(), {static_cast<int64_t>(f.ElementLength())}, torch::kFloat).clone());
  }
  return out;
}

Napi::Value floatArrays(Napi::Env env, std::vector<torch::Tensor>& tensors) {
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); i++) {
    torch::Tensor c = tensors[i].to(torch::kCPU).contiguous();
    Napi::Float32Array f = Napi::Float32Array::New(env, c.numel());
    std::memcpy(f.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
    out.Set(static_cast<uint32_t>(i), f);
  }
  return out;
}

Napi::FunctionReference* groupConstructor = nullptr;

}  // namespace

Napi::Function ProcessGroup::Define(Napi::Env env) {
  Napi::Function fn = DefineClass(env, "ProcessGroup",
                                  {
                                      InstanceMethod("allReduce", &ProcessGroup::AllReduce),
                                      InstanceMethod("broadcast", &ProcessGroup::Broadcast),
                                      InstanceMethod("barrier", &ProcessGroup::Barrier),
                                      InstanceMethod("allGather", &ProcessGroup::AllGather),
                                      InstanceMethod("close", &ProcessGroup::Close),
                                  });
  groupConstructor = new Napi::FunctionReference(Napi::Persistent(fn));
  return fn;
}

ProcessGroup::ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) throw badCall(info.Env(), "a ProcessGroup is made by dist.createGroup(options)");
  group_ = *info[0].As<Napi::External<std::shared_ptr<Group>>>().Data();
  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("rank", group_->rank());
  self.Set("worldSize", group_->worldSize());
  self.Set("backend", group_->backend());
}

Napi::Object ProcessGroup::Wrap(Napi::Env env, std::shared_ptr<Group> group) {
  std::shared_ptr<Group> holder = std::move(group);
  return groupConstructor->New({Napi::External<std::shared_ptr<Group>>::New(env, &holder)});
}

std::shared_ptr<Group> ProcessGroup::From(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(groupConstructor->Value())) throw badCall(env, "expected a ProcessGroup");
  return Unwrap(value.As<Napi::Object>())->live(env);
}

std::shared_ptr<Group> ProcessGroup::live(Napi::Env env) {
  if (!group_) throw badCall(env, "the process group was closed");
  return group_;
}

/** allReduce(tensors: Float32Array[], bucketBytes?): Promise<Float32Array[]> (the mean over ranks). */
Napi::Value ProcessGroup::AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = live(env);
  auto tensors = std::make_shared<std::vector<torch::Tensor>>(floatList(env, info[0], "tensors"));
  size_t bucket = kBucketBytes;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    int64_t b = info[1].As<Napi::Number>().Int64Value();
    if (b < 4) throw badCall(env, "bucketBytes must be >= 4");
    bucket = static_cast<size_t>(b);
  }
  return queue<int>(
      env,
      [group, tensors, bucket]() {
        group->allReduceMean(*tensors, bucket);
        return 0;
      },
      [tensors](Napi::Env e, int&) { return floatArrays(e, *tensors); });
}

/** broadcast(tensors: Float32Array[], root): Promise<Float32Array[]> (rank root's values). */
Napi::Value ProcessGroup::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = live(env);
  auto tensors = std::make_shared<std::vector<torch::Tensor>>(floatList(env, info[0], "tensors"));
  if (!info[1].IsNumber()) throw badCall(env, "root must be a rank number");
  int root = info[1].As<Napi::Number>().Int32Value();
  return queue<int>(
      env,
      [group, tensors, root]() {
        group->broadcast(*tensors, root);
        return 0;
      },
      [tensors](Napi::Env e, int&) { return floatArrays(e, *tensors); });
}

Napi::Value ProcessGroup::Barrier(const Napi::CallbackInfo& info) {
  auto group = live(info.Env());
  return queue<int>(
      info.Env(),
      [group]() {
        group->barrier();
        return 0;
      },
      [](Napi::Env e, int&) { return e.Undefined(); });
}

/** allGather(bytes: Uint8Array): Promise<Uint8Array[]>, one per rank in rank order. */
Napi::Value ProcessGroup::AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = live(env);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw badCall(env, "bytes must be a Uint8Array");
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  std::vector<uint8_t> mine(a.Data(), a.Data() + a.ElementLength());
  return queue<std::vector<std::vector<uint8_t>>>(
      env, [group, mine]() { return group->allGatherBytes(mine); },
      [](Napi::Env e, std::vector<std::vector<uint8_t>>& all) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, all.size());
        for (size_t r = 0; r < all.size(); r++) {
          Napi::Uint8Array b = Napi::Uint8Array::New(e, all[r].size());
          std::memcpy(b.Data(), all[r].data(), all[r].size());
          out.Set(static_cast<uint32_t>(r), b);
        }
        return out;
      });
}

/** close(): leaves the group; the object cannot be used afterwards. */
Napi::Value ProcessGroup::Close(const Napi::CallbackInfo& info) {
  if (group_) {
    group_->close();
    group_.reset();
  }
  return info.Env().Undefined();
}

namespace {

/** createGroup({rank, worldSize, masterAddr, masterPort, timeoutMs, rendezvousTimeoutMs, backend, deviceIndex, agentStore, storePrefix}): Promise<ProcessGroup>. */
Napi::Value CreateGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw badCall(env, "createGroup(options) needs an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto integer = [&](const char* k) -> int64_t {
    Napi::Value v = o.Get(k);
    if (!v.IsNumber()) throw badCall(env, std::string("options.") + k + " must be a number");
    return v.As<Napi::Number>().Int64Value();
  };
  GroupOptions opts;
  opts.rank = static_cast<int>(integer("rank"));
  opts.worldSize = static_cast<int>(integer("worldSize"));
  if (!o.Get("masterAddr").IsString()) throw badCall(env, "options.masterAddr must be a string");
  opts.masterAddr = o.Get("masterAddr").As<Napi::String>().Utf8Value();
  opts.masterPort = static_cast<int>(integer("masterPort"));
  opts.timeout = std::chrono::milliseconds(integer("timeoutMs"));
  if (o.Get("rendezvousTimeoutMs").IsNumber()) opts.rendezvousTimeout = std::chrono::milliseconds(integer("rendezvousTimeoutMs"));
  if (!o.Get("backend").IsString()) throw badCall(env, "options.backend must be a string");
  opts.backend = o.Get("backend").As<Napi::String>().Utf8Value();
  if (o.Has("deviceIndex") && o.Get("deviceIndex").IsNumber()) opts.deviceIndex = static_cast<int>(integer("deviceIndex"));
  opts.agentStore = o.Get("agentStore").ToBoolean();
  if (o.Get("storePrefix").IsString()) opts.storePrefix = o.Get("storePrefix").As<Napi::String>().Utf8Value();
  return queue<std::shared_ptr<Group>>(
      env, [opts]() { return Group::create(opts); },
      [](Napi::Env e, std::shared_ptr<Group>& g) -> Napi::Value { return ProcessGroup::Wrap(e, g); });
}

}  // namespace

Napi::Object Define(Napi::Env env) {
  Napi::Object d = Napi::Object::New(env);
  d.Set("available", Napi::Boolean::New(env, kAvailable));
  d.Set("reason", Napi::String::New(env, kReason));
  Napi::Array backends = Napi::Array::New(env);
#ifdef CELEBA_GAN_DIST
  backends.Set(0u, "gloo");
#ifdef USE_C10D_NCCL
  backends.Set(1u, "nccl");
#endif
#endif
  d.Set("backends", backends);
  d.Set("createGroup", Napi::Function::New(env, CreateGroup, "createGroup"));
  d.Set("ProcessGroup", ProcessGroup::Define(env));
  return d;
}

}  // namespace dist
}  // namespace cgt
