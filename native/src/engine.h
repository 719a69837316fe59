// The training engine object JavaScript holds (src/engines/torch/index.ts wraps it).
// Weights live in one table of canonical tensors (names and layouts of src/model/spec.ts, which
// are PyTorch's own), shared with both networks; training steps and inference run off the
// JavaScript thread in Napi::AsyncWorkers.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dist.h"
#include "network.h"

namespace cgt {

struct Hyper {
  double learningRate, beta1, beta2, epsilon, realLabel;
};

/** Adam over one network's trainable tensors; moments are the canonical `adam.m.*` / `adam.v.*`. */
struct Adam {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params, m, v;
  int64_t steps = 0;
  void update(const std::vector<torch::Tensor>& grads, const Hyper& h);
};

/**
 * Exponential moving average of the generator's weights (`--ema`). It reads the raw weights after
 * each G update and never writes them, so the training trajectory is the same with or without it.
 * Trainable tensors: avg = avg * d + raw * (1 - d), d = min(decay, (1 + t) / (10 + t)), t = G
 * updates before this one (the warmup of ema-pytorch / StyleGAN2-ADA's ema_rampup; TF's
 * ExponentialMovingAverage num_updates). Batch-norm running statistics are left alone here: they
 * are recomputed for the averaged weights before the EMA generator is read
 * (State::refreshEmaStatistics, called from JavaScript; src/engines/ema.ts says why).
 */
struct Ema {
  double decay = 0;  // 0: off
  std::vector<std::string> names;  // the generator's tensors, canonical order
  std::vector<torch::Tensor> raw, avg;
  std::vector<bool> trainable;
  void update(int64_t t);
};

struct Randomness {
  bool given = false;
  torch::Tensor z;
  bool dropoutD = false, dropoutG = false;  // false: dropout disabled for that update
  std::vector<torch::Tensor> masksD, masksG;
};

struct StepMetrics {
  double lossD, lossG, dReal, dFake;
  /** Time spent in the two gradient all-reduces (0 without a process group). */
  double allReduceMs;
};

struct State {
  std::mutex mutex;
  torch::Device device{torch::kCPU};
  bool amp = false;
  bool channelsLast = false;
  std::vector<std::string> order;  // canonical order of every tensor
  std::map<std::string, torch::Tensor> params;
  Network generator, discriminator;
  Adam adamG, adamD;
  Ema ema;
  Network emaGenerator;  // the generator's layers over ema.avg
  int64_t zDim = 0;
  int64_t labelCount = 0;  // K attributes of a conditional spec; 0: unconditional
  bool normalLatent = false;
  int64_t channels = 0, height = 0, width = 0;
  Hyper hyper{};
  /** Data-parallel training: after each backward (D, then G) the gradients are averaged over
   *  the group's ranks (dist.h's Group::allReduceMean) before Adam's step. Null: one process. */
  std::shared_ptr<dist::Group> group;

  // `labels` [N, K] (CPU): a conditional spec's attribute rows; undefined for an unconditional one.
  StepMetrics trainStep(const torch::Tensor& batchHWC, uint64_t seed, const Randomness& r, const torch::Tensor& labels);
  torch::Tensor generate(const torch::Tensor& z, bool useEma, const torch::Tensor& labels);
  void refreshEmaStatistics(const torch::Tensor& z, int64_t chunk, const torch::Tensor& labels);
  torch::Tensor discriminate(const torch::Tensor& images, const torch::Tensor& labels);
};

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Engine(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<State> state_;

  std::shared_ptr<State> live(Napi::Env env);
  Napi::Value SetWeights(const Napi::CallbackInfo& info);
  Napi::Value GetWeights(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info);
  Napi::Value GetOptimizer(const Napi::CallbackInfo& info);
  Napi::Value SetEma(const Napi::CallbackInfo& info);
  Napi::Value GetEma(const Napi::CallbackInfo& info);
  Napi::Value RefreshEmaStatistics(const Napi::CallbackInfo& info);
  Napi::Value SetGroup(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value Discriminate(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
};

}  // namespace cgt
