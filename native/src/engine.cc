#include "engine.h"
#include "task.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace cgt {

namespace {

/** libtorch's own errors carry a C++ backtrace: JavaScript gets the message only. */
std::string messageOf(const std::exception& e) {
  if (auto c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

template <typename F>
auto guarded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, messageOf(e));
  }
}

std::vector<int64_t> shapeOf(const Napi::Value& v) {
  std::vector<int64_t> shape;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) shape.push_back(a.Get(i).As<Napi::Number>().Int64Value());
  return shape;
}

/** A CPU copy of a Float32Array, checked against the expected number of values. */
torch::Tensor floatsOf(Napi::Env env, const Napi::Value& v, at::IntArrayRef shape, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, what + " must be a Float32Array");
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  int64_t n = 1;
  for (auto s : shape) n *= s;
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    throw Napi::RangeError::New(env, what + " has " + std::to_string(a.ElementLength()) + " values, expected " + std::to_string(n));
  }
  return torch::from_blob(a.Data(), shape, torch::kFloat).clone();
}

Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  Napi::Float32Array out = Napi::Float32Array::New(env, c.numel());
  std::memcpy(out.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return out;
}

double num(const Napi::Object& o, const char* key) { return o.Get(key).As<Napi::Number>().DoubleValue(); }

/** Turns gradients off for a network's weights for a scope (the D weights during the G update). */
struct NoGradFor {
  std::vector<torch::Tensor>& params;
  explicit NoGradFor(std::vector<torch::Tensor>& p) : params(p) {
    for (auto& t : params) t.requires_grad_(false);
  }
  ~NoGradFor() {
    for (auto& t : params) t.requires_grad_(true);
  }
};

/** Mixed precision on CUDA (`--amp`): bfloat16 autocast, so no loss scaling is needed. */
struct AutocastScope {
  bool on;
  explicit AutocastScope(bool enable) : on(enable) {
    if (!on) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~AutocastScope() {
    if (!on) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
};

torch::Tensor bce(const torch::Tensor& logits, double target) {
  return torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat), torch::full_like(logits, target, torch::kFloat));
}


}  // namespace

void Adam::update(const std::vector<torch::Tensor>& grads, const Hyper& h) {
  torch::NoGradGuard noGrad;
  steps++;
  const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(steps));
  const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(steps));
  const double sqrtBc2 = std::sqrt(bc2);
  for (size_t i = 0; i < params.size(); i++) {
    const torch::Tensor& g = grads[i];
    m[i].mul_(h.beta1).add_(g, 1.0 - h.beta1);
    v[i].mul_(h.beta2).addcmul_(g, g, 1.0 - h.beta2);
    // p -= lr * mhat / (sqrt(vhat) + eps), with mhat = m / bc1 and vhat = v / bc2
    torch::Tensor denom = v[i].sqrt().div_(sqrtBc2).add_(h.epsilon);
    params[i].addcdiv_(m[i], denom, -h.learningRate / bc1);
  }
}

void Ema::update(int64_t t) {
  if (decay <= 0) return;
  torch::NoGradGuard noGrad;
  const double d = std::min(decay, (1.0 + static_cast<double>(t)) / (10.0 + static_cast<double>(t)));
  for (size_t i = 0; i < avg.size(); i++) {
    // Two rounded products and a rounded sum, as the tfjs engine and the tests' reference compute it.
    if (trainable[i]) avg[i].mul_(d).add_(raw[i].mul(1.0 - d));
  }
}

StepMetrics State::trainStep(const torch::Tensor& batchHWC, uint64_t seed, const Randomness& r, const torch::Tensor& labels) {
  std::lock_guard<std::mutex> lock(mutex);
  AutocastScope autocast(amp && device.is_cuda());
  const int64_t n = batchHWC.size(0);
  // uint8 HWC -> [-1, 1]; the NHWC buffer seen as NCHW is already channels-last.
  torch::Tensor real = batchHWC.to(device).to(torch::kFloat).div_(127.5).sub_(1.0).permute({0, 3, 1, 2});
  // Conditional: the real batch's label rows, for the fakes too (src/engines/engine.ts).
  const torch::Tensor y = labels.defined() ? labels.to(device) : labels;

  at::Generator gen = at::detail::createCPUGenerator(seed);
  torch::Tensor z;
  if (r.given) {
    z = r.z.to(device);
  } else {
    z = torch::empty({n, zDim}, torch::kFloat);
    if (normalLatent) z.normal_(0.0, 1.0, gen); else z.uniform_(-1.0, 1.0, gen);
    z = z.to(device);
  }
  DropoutSource dropD, dropG, dropDisc;  // the spec's masks are the generator's; D's own (if any) are drawn
  if (!r.given) dropDisc = {DropoutSource::Mode::Random, nullptr, &gen};
  if (r.given) {
    if (r.dropoutD) dropD = {DropoutSource::Mode::Given, &r.masksD};
    if (r.dropoutG) dropG = {DropoutSource::Mode::Given, &r.masksG};
  } else {
    dropD = {DropoutSource::Mode::Random, nullptr, &gen};
    dropG = {DropoutSource::Mode::Random, nullptr, &gen};
  }

  // D update: G runs without a graph (only D's weights get gradients here).
  torch::Tensor fake;
  {
    torch::NoGradGuard noGrad;
    fake = generator.forward(z, true, dropD, y);
  }
  torch::Tensor logitsReal = discriminator.forward(real, true, dropDisc, y);
  torch::Tensor logitsFake = discriminator.forward(fake, true, dropDisc, y);
  torch::Tensor lossD = bce(logitsReal, hyper.realLabel) + bce(logitsFake, 0.0);
  double allReduceMs = 0;
  // Data-parallel: every rank's gradients averaged before the step (what DDP does in backward).
  auto averaged = [&](std::vector<torch::Tensor> grads) {
    if (group) {
      auto t0 = std::chrono::steady_clock::now();
      group->allReduceMean(grads);
      allReduceMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    return grads;
  };
  adamD.update(averaged(torch::autograd::grad({lossD}, adamD.params)), hyper);

  // G update: same z, fresh masks, D's updated weights (held constant: no D weight gradients).
  torch::Tensor lossG;
  std::vector<torch::Tensor> gradsG;
  {
    NoGradFor frozen(adamD.params);
    torch::Tensor fake2 = generator.forward(z, true, dropG, y);
    lossG = bce(discriminator.forward(fake2, true, dropDisc, y), 1.0);
    gradsG = torch::autograd::grad({lossG}, adamG.params);
  }
  gradsG = averaged(std::move(gradsG));
  const int64_t updatesBefore = adamG.steps;
  adamG.update(gradsG, hyper);
  if (group) {
    // Batch-norm running statistics come from each replica's own batches; every rank takes rank
    // 0's, as DDP's broadcast_buffers does, so the replicas stay identical (they never change the
    // training itself: training-mode batch norm uses the batch's statistics).
    std::vector<torch::Tensor> buffers;
    for (const auto& name : order) {
      if (name.size() > 13 && (name.compare(name.size() - 13, 13, ".running_mean") == 0 || name.compare(name.size() - 12, 12, ".running_var") == 0)) {
        buffers.push_back(params.at(name));
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    if (!buffers.empty()) group->broadcast(buffers, 0);
    allReduceMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  ema.update(updatesBefore);

  torch::NoGradGuard noGrad;
  return StepMetrics{lossD.item<double>(), lossG.item<double>(), torch::sigmoid(logitsReal.to(torch::kFloat)).mean().item<double>(),
                     torch::sigmoid(logitsFake.to(torch::kFloat)).mean().item<double>(), allReduceMs};
}

torch::Tensor State::generate(const torch::Tensor& z, bool useEma, const torch::Tensor& labels) {
  std::lock_guard<std::mutex> lock(mutex);
  if (useEma && ema.decay <= 0) throw std::runtime_error("generate: the EMA generator is off (setEma was not called with a decay above 0)");
  c10::InferenceMode inference;
  AutocastScope autocast(amp && device.is_cuda());
  DropoutSource none;
  const Network& net = useEma ? emaGenerator : generator;
  return net.forward(z.to(device), false, none, labels.defined() ? labels.to(device) : labels).to(torch::kCPU, torch::kFloat).contiguous();
}

/**
 * The EMA generator's batch-norm running statistics, recomputed for its averaged weights: each
 * layer's running mean and variance become the average of its input's batch statistics over the
 * chunks of `z` (a cumulative average, as SWA's bn_update: chunk k enters with weight 1/(k+1)),
 * from train-mode forwards without dropout (inference runs without it).
 */
void State::refreshEmaStatistics(const torch::Tensor& z, int64_t chunk, const torch::Tensor& labels) {
  std::lock_guard<std::mutex> lock(mutex);
  if (ema.decay <= 0) throw std::runtime_error("refreshEmaStatistics: the EMA generator is off");
  if (chunk < 1 || z.size(0) % chunk != 0) throw std::invalid_argument("refreshEmaStatistics: the latents are not a whole number of chunks");
  torch::NoGradGuard noGrad;
  AutocastScope autocast(amp && device.is_cuda());
  // The layers get their own momentum back however the loop ends.
  struct MomentumRestore {
    std::vector<Layer>& layers;
    std::vector<double> saved;
    ~MomentumRestore() {
      for (size_t i = 0; i < saved.size(); i++) layers[i].momentum = saved[i];
    }
  } restore{emaGenerator.layers, {}};
  for (const Layer& l : emaGenerator.layers) restore.saved.push_back(l.momentum);
  for (int64_t k = 0; k < z.size(0) / chunk; k++) {
    // The spec's momentum is TensorFlow's: running = running * m + batch * (1 - m).
    for (Layer& l : emaGenerator.layers) l.momentum = static_cast<double>(k) / static_cast<double>(k + 1);
    DropoutSource none;
    const torch::Tensor y = labels.defined() ? labels.narrow(0, k * chunk, chunk).to(device) : labels;
    emaGenerator.forward(z.narrow(0, k * chunk, chunk).to(device), true, none, y);
  }
}

torch::Tensor State::discriminate(const torch::Tensor& images, const torch::Tensor& labels) {
  std::lock_guard<std::mutex> lock(mutex);
  c10::InferenceMode inference;
  AutocastScope autocast(amp && device.is_cuda());
  DropoutSource none;
  return discriminator.forward(images.to(device), false, none, labels.defined() ? labels.to(device) : labels)
      .reshape({-1})
      .to(torch::kCPU, torch::kFloat)
      .contiguous();
}

Napi::Function Engine::Define(Napi::Env env) {
  return DefineClass(env, "Engine",
                     {
                         InstanceMethod<&Engine::SetWeights>("setWeights"),
                         InstanceMethod<&Engine::GetWeights>("getWeights"),
                         InstanceMethod<&Engine::SetOptimizer>("setOptimizer"),
                         InstanceMethod<&Engine::GetOptimizer>("getOptimizer"),
                         InstanceMethod<&Engine::SetEma>("setEma"),
                         InstanceMethod<&Engine::GetEma>("getEma"),
                         InstanceMethod<&Engine::RefreshEmaStatistics>("refreshEmaStatistics"),
                         InstanceMethod<&Engine::SetGroup>("setGroup"),
                         InstanceMethod<&Engine::TrainStep>("trainStep"),
                         InstanceMethod<&Engine::Generate>("generate"),
                         InstanceMethod<&Engine::Discriminate>("discriminate"),
                         InstanceMethod<&Engine::Dispose>("dispose"),
                     });
}

/**
 * new Engine({ params: [{ name, shape, trainable, network }], generator: Layer[], discriminator: Layer[],
 *              zDim, labels (K attributes, 0: unconditional), latent, image: { channels, height, width }, training: { learningRate, beta1, beta2,
 *              epsilon, realLabel }, device, channelsLast, amp, convTranspose: 'gemm' | 'aten' })
 */
Engine::Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
  Napi::Env env = info.Env();
  guarded(env, [&] {
    Napi::Object o = info[0].As<Napi::Object>();
    auto s = std::make_shared<State>();
    s->device = torch::Device(o.Get("device").As<Napi::String>().Utf8Value());
    if (s->device.is_cuda() && !torch::cuda::is_available()) {
      throw std::runtime_error("this libtorch has no CUDA, or no CUDA GPU is visible");
    }
    if (s->device.is_cuda() && s->device.has_index() && s->device.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw std::runtime_error("CUDA device " + std::to_string(s->device.index()) + " does not exist (" +
                               std::to_string(torch::cuda::device_count()) + " visible)");
    }
    s->amp = o.Get("amp").ToBoolean();
    s->channelsLast = o.Get("channelsLast").ToBoolean();
    s->zDim = o.Get("zDim").As<Napi::Number>().Int64Value();
    s->labelCount = o.Has("labels") && o.Get("labels").IsNumber() ? o.Get("labels").As<Napi::Number>().Int64Value() : 0;
    s->normalLatent = o.Get("latent").As<Napi::String>().Utf8Value() == "normal";
    Napi::Object image = o.Get("image").As<Napi::Object>();
    s->channels = image.Get("channels").As<Napi::Number>().Int64Value();
    s->height = image.Get("height").As<Napi::Number>().Int64Value();
    s->width = image.Get("width").As<Napi::Number>().Int64Value();
    Napi::Object t = o.Get("training").As<Napi::Object>();
    s->hyper = Hyper{num(t, "learningRate"), num(t, "beta1"), num(t, "beta2"), num(t, "epsilon"), num(t, "realLabel")};

    Napi::Array params = o.Get("params").As<Napi::Array>();
    for (uint32_t i = 0; i < params.Length(); i++) {
      Napi::Object p = params.Get(i).As<Napi::Object>();
      std::string name = p.Get("name").As<Napi::String>();
      auto shape = shapeOf(p.Get("shape"));
      torch::Tensor tensor = torch::zeros(shape, torch::TensorOptions(torch::kFloat).device(s->device));
      if (s->channelsLast && tensor.dim() == 4) tensor = tensor.contiguous(at::MemoryFormat::ChannelsLast);
      s->order.push_back(name);
      if (p.Get("trainable").ToBoolean()) {
        tensor.requires_grad_(true);
        Adam& adam = p.Get("network").As<Napi::String>().Utf8Value() == "generator" ? s->adamG : s->adamD;
        adam.names.push_back(name);
        adam.params.push_back(tensor);
        adam.m.push_back(torch::zeros_like(tensor).detach());
        adam.v.push_back(torch::zeros_like(tensor).detach());
      }
      s->params.emplace(name, tensor);
      if (p.Get("network").As<Napi::String>().Utf8Value() == "generator") {
        s->ema.names.push_back(name);
        s->ema.raw.push_back(tensor);
        s->ema.avg.push_back(torch::zeros_like(tensor).detach());
        s->ema.trainable.push_back(p.Get("trainable").ToBoolean());
      }
    }
    std::map<std::string, torch::Tensor> emaParams;
    for (size_t i = 0; i < s->ema.names.size(); i++) emaParams.emplace(s->ema.names[i], s->ema.avg[i]);
    const bool gemm = !o.Has("convTranspose") || o.Get("convTranspose").ToString().Utf8Value() != "aten";
    s->generator = parseNetwork(o.Get("generator").As<Napi::Array>(), s->params, s->channelsLast, gemm);
    s->discriminator = parseNetwork(o.Get("discriminator").As<Napi::Array>(), s->params, s->channelsLast, gemm);
    s->emaGenerator = parseNetwork(o.Get("generator").As<Napi::Array>(), emaParams, s->channelsLast, gemm);
    state_ = s;
  });
}

std::shared_ptr<State> Engine::live(Napi::Env env) {
  if (!state_) throw Napi::Error::New(env, "the torch engine was disposed");
  return state_;
}

/** setWeights({ [name]: Float32Array }): every tensor of the table must be present. */
Napi::Value Engine::SetWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  guarded(env, [&] {
    Napi::Object src = info[0].As<Napi::Object>();
    std::lock_guard<std::mutex> lock(s->mutex);
    torch::NoGradGuard noGrad;
    for (const auto& name : s->order) {
      if (!src.Has(name)) throw Napi::Error::New(env, "missing weight " + name);
      torch::Tensor& t = s->params.at(name);
      t.copy_(floatsOf(env, src.Get(name), t.sizes(), name));
    }
  });
  return env.Undefined();
}

Napi::Value Engine::GetWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&] {
    std::lock_guard<std::mutex> lock(s->mutex);
    Napi::Object out = Napi::Object::New(env);
    for (const auto& name : s->order) out.Set(name, toFloat32Array(env, s->params.at(name)));
    return out;
  });
}

/** setOptimizer({ ['adam.m.<name>' | 'adam.v.<name>']: Float32Array }, stepsG, stepsD) */
Napi::Value Engine::SetOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  guarded(env, [&] {
    Napi::Object src = info[0].As<Napi::Object>();
    std::lock_guard<std::mutex> lock(s->mutex);
    torch::NoGradGuard noGrad;
    for (Adam* adam : {&s->adamG, &s->adamD}) {
      for (size_t i = 0; i < adam->names.size(); i++) {
        for (auto [prefix, moment] : {std::pair{"adam.m.", &adam->m[i]}, std::pair{"adam.v.", &adam->v[i]}}) {
          std::string key = prefix + adam->names[i];
          if (!src.Has(key)) throw Napi::Error::New(env, "missing optimizer tensor " + key);
          moment->copy_(floatsOf(env, src.Get(key), moment->sizes(), key));
        }
      }
    }
    s->adamG.steps = info[1].As<Napi::Number>().Int64Value();
    s->adamD.steps = info[2].As<Napi::Number>().Int64Value();
  });
  return env.Undefined();
}

Napi::Value Engine::GetOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&] {
    std::lock_guard<std::mutex> lock(s->mutex);
    Napi::Object tensors = Napi::Object::New(env);
    for (Adam* adam : {&s->adamG, &s->adamD}) {
      for (size_t i = 0; i < adam->names.size(); i++) tensors.Set("adam.m." + adam->names[i], toFloat32Array(env, adam->m[i]));
      for (size_t i = 0; i < adam->names.size(); i++) tensors.Set("adam.v." + adam->names[i], toFloat32Array(env, adam->v[i]));
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", tensors);
    Napi::Object steps = Napi::Object::New(env);
    steps.Set("generator", Napi::Number::New(env, static_cast<double>(s->adamG.steps)));
    steps.Set("discriminator", Napi::Number::New(env, static_cast<double>(s->adamD.steps)));
    out.Set("steps", steps);
    return out;
  });
}

/**
 * setEma(decay, tensors | null): decay 0 turns the EMA off; otherwise the EMA copy starts from
 * `tensors` ({ [generator tensor name]: Float32Array }, every generator tensor) or, when null,
 * from the raw generator's current weights.
 */
Napi::Value Engine::SetEma(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  guarded(env, [&] {
    const double decay = info[0].As<Napi::Number>().DoubleValue();
    if (!(decay >= 0 && decay < 1)) throw Napi::RangeError::New(env, "ema decay must be in [0, 1)");
    std::lock_guard<std::mutex> lock(s->mutex);
    torch::NoGradGuard noGrad;
    Ema& ema = s->ema;
    if (decay > 0) {
      const bool given = info.Length() > 1 && info[1].IsObject();
      std::vector<torch::Tensor> values;
      for (size_t i = 0; i < ema.names.size(); i++) {
        if (!given) continue;
        Napi::Object src = info[1].As<Napi::Object>();
        if (!src.Has(ema.names[i])) throw Napi::Error::New(env, "missing EMA tensor " + ema.names[i]);
        values.push_back(floatsOf(env, src.Get(ema.names[i]), ema.avg[i].sizes(), "EMA " + ema.names[i]));
      }
      for (size_t i = 0; i < ema.names.size(); i++) ema.avg[i].copy_(given ? values[i] : ema.raw[i]);
    }
    ema.decay = decay;
  });
  return env.Undefined();
}

/** getEma() -> { [generator tensor name]: Float32Array } | null (off) */
Napi::Value Engine::GetEma(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(s->mutex);
    if (s->ema.decay <= 0) return env.Null();
    Napi::Object out = Napi::Object::New(env);
    for (size_t i = 0; i < s->ema.names.size(); i++) out.Set(s->ema.names[i], toFloat32Array(env, s->ema.avg[i]));
    return out;
  });
}

namespace {

std::vector<torch::Tensor> masksOf(Napi::Env env, const Napi::Value& v, const Network& g, int64_t n, const std::string& what) {
  std::vector<torch::Tensor> masks;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Float32Array m = a.Get(i).As<Napi::Float32Array>();
    if (m.ElementLength() % n != 0) throw Napi::RangeError::New(env, what + "[" + std::to_string(i) + "] is not [batch, C*H*W]");
    masks.push_back(floatsOf(env, m, {n, static_cast<int64_t>(m.ElementLength()) / n}, what));
  }
  return masks;
}

/**
 * Argument `index`: the call's labels, [n, K] Float32Array for a conditional engine (required),
 * null/undefined for an unconditional one (anything else is an error).
 */
torch::Tensor labelsOf(Napi::Env env, const Napi::CallbackInfo& info, size_t index, const State& s, int64_t n) {
  const bool given = info.Length() > index && !info[index].IsNull() && !info[index].IsUndefined();
  if (s.labelCount == 0) {
    if (given) throw Napi::TypeError::New(env, "labels given to an unconditional engine");
    return {};
  }
  if (!given) throw Napi::TypeError::New(env, "this engine is conditional: labels [n, " + std::to_string(s.labelCount) + "] are required");
  return floatsOf(env, info[index], {n, s.labelCount}, "labels");
}

}  // namespace

namespace {

/** Sum over the ranks, differentiable: the backward sums the incoming gradients over the ranks too. */
struct AllReduceSum : torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t group) {
    ctx->saved_data["group"] = group;
    return sum(x, group);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    return {sum(grads[0], ctx->saved_data["group"].toInt()), torch::Tensor()};
  }
  static torch::Tensor sum(const torch::Tensor& x, int64_t group) {
    auto* g = reinterpret_cast<dist::Group*>(group);  // alive: State::group holds it
    std::vector<torch::Tensor> t{x.detach().clone()};
    g->allReduceMean(t);
    return t[0].mul_(static_cast<double>(g->worldSize()));
  }
};

}  // namespace

/** setGroup(group: ProcessGroup | null, syncBn?: boolean): average gradients over the group's ranks from now on. */
Napi::Value Engine::SetGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  std::shared_ptr<dist::Group> group = info[0].IsNull() || info[0].IsUndefined() ? nullptr : dist::ProcessGroup::From(env, info[0]);
  const bool syncBn = group && info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  std::lock_guard<std::mutex> lock(s->mutex);
  s->group = std::move(group);
  std::function<torch::Tensor(const torch::Tensor&)> sum;
  if (syncBn) {
    const int64_t raw = reinterpret_cast<int64_t>(s->group.get());
    sum = [raw](const torch::Tensor& t) { return AllReduceSum::apply(t, raw); };
  }
  s->generator.syncSum = sum;
  s->discriminator.syncSum = sum;
  return env.Undefined();
}

/** trainStep(batch: Uint8Array [n, H, W, C], n, seed: uint32 (per step), randomness | null, labels | null) -> Promise<metrics> */
Napi::Value Engine::TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "batch must be a Uint8Array");
    }
    Napi::Uint8Array batch = info[0].As<Napi::Uint8Array>();
    const int64_t n = info[1].As<Napi::Number>().Int64Value();
    if (static_cast<int64_t>(batch.ElementLength()) != n * s->height * s->width * s->channels) {
      throw Napi::RangeError::New(env, "batch has " + std::to_string(batch.ElementLength()) + " bytes, expected " +
                                           std::to_string(n * s->height * s->width * s->channels));
    }
    torch::Tensor images = torch::from_blob(batch.Data(), {n, s->height, s->width, s->channels}, torch::kUInt8).clone();
    const uint64_t seed = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
    auto r = std::make_shared<Randomness>();
    if (info.Length() > 3 && info[3].IsObject()) {
      Napi::Object o = info[3].As<Napi::Object>();
      r->given = true;
      r->z = floatsOf(env, o.Get("z"), {n, s->zDim}, "randomness.z");
      r->dropoutD = o.Get("dropoutD").IsArray();
      r->dropoutG = o.Get("dropoutG").IsArray();
      if (r->dropoutD) r->masksD = masksOf(env, o.Get("dropoutD"), s->generator, n, "randomness.dropoutD");
      if (r->dropoutG) r->masksG = masksOf(env, o.Get("dropoutG"), s->generator, n, "randomness.dropoutG");
    }
    torch::Tensor labels = labelsOf(env, info, 4, *s, n);
    auto task = new Task<StepMetrics>(
        env, [s, images, seed, r, labels] { return s->trainStep(images, seed, *r, labels); },
        [](Napi::Env e, StepMetrics& m) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("lossD", m.lossD);
          out.Set("lossG", m.lossG);
          out.Set("dReal", m.dReal);
          out.Set("dFake", m.dFake);
          out.Set("allReduceMs", m.allReduceMs);
          return out;
        },
        messageOf);
    task->Queue();
    return task->Promise();
  });
}

/** generate(z: Float32Array [n, zDim], n, ema?: boolean, labels | null) -> Promise<Float32Array [n, C, H, W]> */
Napi::Value Engine::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&]() -> Napi::Value {
    const int64_t n = info[1].As<Napi::Number>().Int64Value();
    torch::Tensor z = floatsOf(env, info[0], {n, s->zDim}, "z");
    const bool useEma = info.Length() > 2 && info[2].ToBoolean();
    torch::Tensor labels = labelsOf(env, info, 3, *s, n);
    auto task = new Task<torch::Tensor>(env, [s, z, useEma, labels] { return s->generate(z, useEma, labels); },
                                        [](Napi::Env e, torch::Tensor& t) -> Napi::Value { return toFloat32Array(e, t); }, messageOf);
    task->Queue();
    return task->Promise();
  });
}

/** refreshEmaStatistics(z: Float32Array [n, zDim], n, chunk, labels | null) -> Promise<void> (State::refreshEmaStatistics) */
Napi::Value Engine::RefreshEmaStatistics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&]() -> Napi::Value {
    const int64_t n = info[1].As<Napi::Number>().Int64Value();
    const int64_t chunk = info[2].As<Napi::Number>().Int64Value();
    torch::Tensor z = floatsOf(env, info[0], {n, s->zDim}, "z");
    torch::Tensor labels = labelsOf(env, info, 3, *s, n);
    auto task = new Task<bool>(env, [s, z, chunk, labels] { s->refreshEmaStatistics(z, chunk, labels); return true; },
                               [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); }, messageOf);
    task->Queue();
    return task->Promise();
  });
}

/** discriminate(images: Float32Array [n, C, H, W], n, labels | null) -> Promise<Float32Array [n]> (logits) */
Napi::Value Engine::Discriminate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env);
  return guarded(env, [&]() -> Napi::Value {
    const int64_t n = info[1].As<Napi::Number>().Int64Value();
    torch::Tensor x = floatsOf(env, info[0], {n, s->channels, s->height, s->width}, "images");
    torch::Tensor labels = labelsOf(env, info, 2, *s, n);
    auto task = new Task<torch::Tensor>(env, [s, x, labels] { return s->discriminate(x, labels); },
                                        [](Napi::Env e, torch::Tensor& t) -> Napi::Value { return toFloat32Array(e, t); }, messageOf);
    task->Queue();
    return task->Promise();
  });
}

/** Releases the tensors once running tasks (which hold the state) finish. */
Napi::Value Engine::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace cgt
