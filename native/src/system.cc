// What this libtorch is and runs on: version, CUDA, threads, and which BLAS the process loaded
// (Debian's libtorch calls whatever libblas.so.3 the system selects; the reference BLAS is ~20x
// slower than OpenBLAS, so the engine warns about it).
#include <ATen/Parallel.h>
#include <link.h>
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

namespace cgt {

namespace {

int collectBlas(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("blas") == std::string::npos && name.find("mkl") == std::string::npos) return 0;
  char resolved[PATH_MAX];
  out->push_back(realpath(name.c_str(), resolved) ? std::string(resolved) : name);
  return 0;
}

}  // namespace

Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("cuda", torch::cuda::is_available());
  out.Set("cudaDevices", static_cast<double>(torch::cuda::is_available() ? torch::cuda::device_count() : 0));
  out.Set("mkldnn", at::hasMKLDNN());
  out.Set("threads", at::get_num_threads());
  std::vector<std::string> blas;
  dl_iterate_phdr(collectBlas, &blas);
  Napi::Array libs = Napi::Array::New(env, blas.size());
  for (size_t i = 0; i < blas.size(); i++) libs.Set(static_cast<uint32_t>(i), blas[i]);
  out.Set("blasLibraries", libs);
  return out;
}

/** setThreads(n): libtorch's intra-op thread pool (process-wide). */
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "threads must be >= 1");
  at::set_num_threads(n);
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

}  // namespace cgt
