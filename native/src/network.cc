#include "network.h"

#include <stdexcept>

namespace cgt {

namespace {

LayerKind kindOf(const std::string& kind) {
  static const std::map<std::string, LayerKind> kinds = {
      {"dense", LayerKind::Dense},         {"reshape", LayerKind::Reshape}, {"conv2d", LayerKind::Conv2d},
      {"convTranspose2d", LayerKind::ConvTranspose2d},                      {"batchNorm", LayerKind::BatchNorm},
      {"leakyRelu", LayerKind::LeakyRelu}, {"relu", LayerKind::Relu},       {"dropout", LayerKind::Dropout},
      {"tanh", LayerKind::Tanh},           {"sigmoid", LayerKind::Sigmoid}, {"flatten", LayerKind::Flatten},
      {"concatLabels", LayerKind::ConcatLabels},                            {"projectLabels", LayerKind::ProjectLabels},
  };
  auto it = kinds.find(kind);
  if (it == kinds.end()) throw std::invalid_argument("unsupported layer kind \"" + kind + "\"");
  return it->second;
}

torch::Tensor param(const Napi::Object& o, const char* key, const std::map<std::string, torch::Tensor>& params) {
  if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) return {};
  std::string name = o.Get(key).As<Napi::String>();
  auto it = params.find(name);
  if (it == params.end()) throw std::invalid_argument("layer refers to unknown parameter \"" + name + "\"");
  return it->second;
}

double number(const Napi::Object& o, const char* key, double fallback = 0) {
  return o.Has(key) && o.Get(key).IsNumber() ? o.Get(key).As<Napi::Number>().DoubleValue() : fallback;
}

/**
 * Transposed convolution (weight [Cin, Cout, kh, kw]) cropping `padH`/`padW` at both ends:
 * columns = W^T x for the whole batch in ONE matrix product ([Cout*kh*kw, Cin] x [Cin, N*H*W]),
 * then col2im adds the overlapping kernel windows into the output. Autograd differentiates
 * mm and col2im (its backward is im2col), so the backward pass is two large GEMMs as well.
 */
torch::Tensor convTransposeGemm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride,
                                int64_t padH, int64_t padW) {
  const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t cout = w.size(1), kh = w.size(2), kw = w.size(3);
  const int64_t outH = (h - 1) * stride + kh - 2 * padH, outW = (wd - 1) * stride + kw - 2 * padW;
  torch::Tensor rows = x.transpose(0, 1).reshape({cin, n * h * wd});             // Cin x (N*H*W)
  torch::Tensor cols = at::mm(w.reshape({cin, cout * kh * kw}).t(), rows);       // (Cout*kh*kw) x (N*H*W)
  cols = cols.view({cout * kh * kw, n, h * wd}).transpose(0, 1);                 // N x (Cout*kh*kw) x (H*W)
  torch::Tensor y = at::col2im(cols, {outH, outW}, {kh, kw}, {1, 1}, {padH, padW}, {stride, stride});
  return b.defined() ? y + b.view({1, cout, 1, 1}) : y;
}

}  // namespace

torch::Tensor DropoutSource::apply(const torch::Tensor& x, double rate) {
  switch (mode) {
    case Mode::Off:
      return x;
    case Mode::Given: {
      if (!masks || next >= masks->size()) throw std::invalid_argument("fewer dropout masks given than dropout layers");
      const torch::Tensor& m = (*masks)[next++];  // CPU tensors from JavaScript
      return x * m.to(x.device()).view(x.sizes());
    }
    case Mode::Random: {
      // Inverted dropout: keep with probability 1 - rate, scale kept units by 1 / (1 - rate).
      // Masks are drawn on the CPU generator so a (seed, step) gives the same masks on any device.
      // (uniform < keep is about a third faster than bernoulli_ on the CPU in libtorch 1.13.)
      const double keep = 1.0 - rate;
      auto u = torch::empty(x.sizes(), torch::kFloat).uniform_(0.0, 1.0, *generator);
      auto m = u.lt(keep).to(torch::kFloat).mul_(1.0 / keep);
      return x * m.to(x.device());
    }
  }
  return x;
}

Network parseNetwork(const Napi::Array& layers, const std::map<std::string, torch::Tensor>& params, bool channelsLast,
                     bool gemmConvTranspose) {
  Network net;
  net.channelsLast = channelsLast;
  net.gemmConvTranspose = gemmConvTranspose;
  for (uint32_t i = 0; i < layers.Length(); i++) {
    Napi::Object o = layers.Get(i).As<Napi::Object>();
    Layer l;
    l.kind = kindOf(o.Get("kind").As<Napi::String>());
    l.weight = param(o, "weight", params);
    l.bias = param(o, "bias", params);
    l.runningMean = param(o, "runningMean", params);
    l.runningVar = param(o, "runningVar", params);
    l.stride = static_cast<int64_t>(number(o, "stride", 1));
    if (o.Has("pads") && o.Get("pads").IsArray()) {
      Napi::Array p = o.Get("pads").As<Napi::Array>();  // [top, bottom, left, right]
      l.padTop = p.Get(0u).As<Napi::Number>().Int64Value();
      l.padBottom = p.Get(1u).As<Napi::Number>().Int64Value();
      l.padLeft = p.Get(2u).As<Napi::Number>().Int64Value();
      l.padRight = p.Get(3u).As<Napi::Number>().Int64Value();
    }
    l.momentum = number(o, "momentum");
    l.epsilon = number(o, "epsilon");
    l.alpha = number(o, "alpha");
    l.rate = number(o, "rate");
    if (o.Has("shape") && o.Get("shape").IsArray()) {
      Napi::Array s = o.Get("shape").As<Napi::Array>();
      for (uint32_t k = 0; k < s.Length(); k++) l.shape.push_back(s.Get(k).As<Napi::Number>().Int64Value());
    }
    bool needsWeight = l.kind == LayerKind::Dense || l.kind == LayerKind::Conv2d || l.kind == LayerKind::ConvTranspose2d ||
                       l.kind == LayerKind::BatchNorm || l.kind == LayerKind::ProjectLabels;
    if (needsWeight && !l.weight.defined()) throw std::invalid_argument("layer " + std::to_string(i) + " has no weight");
    if (l.kind == LayerKind::BatchNorm && (!l.bias.defined() || !l.runningMean.defined() || !l.runningVar.defined())) {
      throw std::invalid_argument("batch norm layer " + std::to_string(i) + " lacks beta or running statistics");
    }
    if (l.kind == LayerKind::Reshape && l.shape.size() != 3) throw std::invalid_argument("reshape layer needs a [C, H, W] shape");
    net.layers.push_back(std::move(l));
  }
  return net;
}

namespace {

/**
 * Training-mode batch norm over the global batch: each rank's per-channel sums of x and x^2 (in
 * float64, so E[x^2] - E[x]^2 loses nothing that matters) and its count are summed over the
 * ranks by `sum`, whose backward sums the gradients as well, as SyncBatchNorm does.
 */
torch::Tensor syncBatchNorm(const torch::Tensor& x, const Layer& l, const std::function<torch::Tensor(const torch::Tensor&)>& sum) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
  const int64_t C = x.size(1);
  torch::Tensor xd = x.to(torch::kDouble);
  torch::Tensor local = torch::cat({xd.sum(dims), (xd * xd).sum(dims), torch::full({1}, static_cast<double>(x.numel() / C), torch::kDouble)});
  torch::Tensor global = sum(local);
  torch::Tensor count = global.narrow(0, 2 * C, 1).detach();
  torch::Tensor mean = global.narrow(0, 0, C) / count;
  torch::Tensor var = global.narrow(0, C, C) / count - mean * mean;  // biased: to normalise
  {
    torch::NoGradGuard noGrad;
    const double n = count.item<double>();
    const double m = 1.0 - l.momentum;  // the spec's momentum is TensorFlow's
    l.runningMean.mul_(1.0 - m).add_(mean.to(l.runningMean.scalar_type()), m);
    l.runningVar.mul_(1.0 - m).add_((var * (n / (n - 1.0))).to(l.runningVar.scalar_type()), m);
  }
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = C;
  torch::Tensor invStd = (var + l.epsilon).rsqrt().to(x.scalar_type()).view(shape);
  return (x - mean.to(x.scalar_type()).view(shape)) * invStd * l.weight.view(shape) + l.bias.view(shape);
}

}  // namespace

torch::Tensor Network::forward(torch::Tensor x, bool train, DropoutSource& dropout, const torch::Tensor& labels) const {
  const auto format = channelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  if (x.dim() == 4) x = x.contiguous(format);
  torch::Tensor projection;  // the projection discriminator's term, added to the output
  auto needLabels = [&]() -> const torch::Tensor& {
    if (!labels.defined()) throw std::invalid_argument("this network is conditional and needs labels");
    return labels;
  };
  for (const Layer& l : layers) {
    switch (l.kind) {
      case LayerKind::ConcatLabels:
        x = torch::cat({x, needLabels().to(x.device(), x.scalar_type())}, 1);
        break;
      case LayerKind::ProjectLabels: {
        // sum_k y_k <e_k, h> = (y E) . h, h flattened in C,H,W order whatever the memory format.
        const torch::Tensor y = needLabels().to(x.device());
        projection = (at::mm(y.to(l.weight.scalar_type()), l.weight) * x.reshape({x.size(0), -1})).sum(1, true);
        break;
      }
      case LayerKind::Dense:
        x = at::linear(x, l.weight, l.bias);
        break;
      case LayerKind::Reshape:  // C,H,W order: PyTorch's own
        x = x.reshape({x.size(0), l.shape[0], l.shape[1], l.shape[2]}).contiguous(format);
        break;
      case LayerKind::Conv2d:
        if (l.padTop == l.padBottom && l.padLeft == l.padRight) {
          x = at::conv2d(x, l.weight, l.bias, {l.stride, l.stride}, {l.padTop, l.padLeft});
        } else {  // TensorFlow `same` with odd total padding: the extra row/column at the end
          x = at::conv2d(at::constant_pad_nd(x, {l.padLeft, l.padRight, l.padTop, l.padBottom}), l.weight, l.bias,
                         {l.stride, l.stride});
        }
        break;
      case LayerKind::ConvTranspose2d: {
        // PyTorch's `padding` crops the same amount at both ends; crop the symmetric part there
        // and the rest (TensorFlow puts the odd extra at the end) with a narrow view.
        const int64_t ph = std::min(l.padTop, l.padBottom), pw = std::min(l.padLeft, l.padRight);
        x = gemmConvTranspose ? convTransposeGemm(x, l.weight, l.bias, l.stride, ph, pw)
                              : at::conv_transpose2d(x, l.weight, l.bias, {l.stride, l.stride}, {ph, pw});
        const int64_t top = l.padTop - ph, bottom = l.padBottom - ph, left = l.padLeft - pw, right = l.padRight - pw;
        if (top || bottom) x = x.narrow(2, top, x.size(2) - top - bottom);
        if (left || right) x = x.narrow(3, left, x.size(3) - left - right);
        break;
      }
      case LayerKind::BatchNorm:
        // Train: biased batch variance to normalise, unbiased to update the running variance
        // (spec.ts); the spec's momentum is TensorFlow's, PyTorch's is 1 - it.
        if (train && syncSum) x = syncBatchNorm(x, l, syncSum);
        else x = at::batch_norm(x, l.weight, l.bias, l.runningMean, l.runningVar, train, 1.0 - l.momentum, l.epsilon, true);
        break;
      case LayerKind::LeakyRelu:
        x = at::leaky_relu(x, l.alpha);
        break;
      case LayerKind::Relu:
        x = at::relu(x);
        break;
      case LayerKind::Dropout:
        if (train) x = dropout.apply(x, l.rate);
        break;
      case LayerKind::Tanh:
        x = at::tanh(x);
        break;
      case LayerKind::Sigmoid:
        x = at::sigmoid(x);
        break;
      case LayerKind::Flatten:  // C,H,W order whatever the memory format
        x = x.reshape({x.size(0), -1});
        break;
    }
  }
  return projection.defined() ? x + projection : x;
}

}  // namespace cgt
