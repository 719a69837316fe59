// celeba_gan_torch: the native libtorch training engine. Loaded only by src/bindings/torch.ts.
#include <napi.h>

#include "dist.h"
#include "engine.h"

namespace cgt {
Napi::Value SystemInfo(const Napi::CallbackInfo& info);
Napi::Value SetThreads(const Napi::CallbackInfo& info);
}  // namespace cgt

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", cgt::Engine::Define(env));
  exports.Set("systemInfo", Napi::Function::New(env, cgt::SystemInfo, "systemInfo"));
  exports.Set("setThreads", Napi::Function::New(env, cgt::SetThreads, "setThreads"));
  exports.Set("dist", cgt::dist::Define(env));  // data-parallel training (dist.h)
  return exports;
}

NODE_API_MODULE(celeba_gan_torch, Init)
