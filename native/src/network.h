// A network built at run time from the architecture spec (src/model/spec.ts), passed from
// JavaScript as plain data: the layer list of src/engines/torch/layers.ts. Nothing here knows
// the presets; every size, pad and parameter name comes from that data.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace cgt {

enum class LayerKind {
  Dense, Reshape, Conv2d, ConvTranspose2d, BatchNorm, LeakyRelu, Relu, Dropout, Tanh, Sigmoid, Flatten,
  ConcatLabels,   // conditional generator: x [N, F] -> [x, y] [N, F + K]
  ProjectLabels,  // projection discriminator: adds sum_k y_k <e_k, flatten(x)> (weight E [K, F]) to the output
};

struct Layer {
  LayerKind kind;
  // Parameters (undefined tensors where the layer has none). They share storage with the
  // engine's parameter table, so loading weights in place updates the network.
  torch::Tensor weight, bias, runningMean, runningVar;
  int64_t stride = 1;
  // Explicit pads (conv2d: rows/columns added; convTranspose2d: cropped), TensorFlow-style.
  int64_t padTop = 0, padBottom = 0, padLeft = 0, padRight = 0;
  double momentum = 0, epsilon = 0, alpha = 0, rate = 0;
  std::vector<int64_t> shape;  // reshape target [C, H, W]
};

/** Where a train-mode forward takes its dropout keep-masks from. */
struct DropoutSource {
  enum class Mode { Off, Given, Random } mode = Mode::Off;
  const std::vector<torch::Tensor>* masks = nullptr;  // Given: one per dropout layer, [N, C*H*W]
  at::Generator* generator = nullptr;                 // Random: CPU generator seeded per step
  size_t next = 0;

  torch::Tensor apply(const torch::Tensor& x, double rate);
};

struct Network {
  std::vector<Layer> layers;
  bool channelsLast = false;
  // Transposed convolutions as one GEMM over the whole batch + col2im (true), or libtorch's
  // conv_transpose2d, which on the CPU (1.13: no oneDNN deconvolution) runs one small GEMM per
  // image and is several times slower, backward above all.
  bool gemmConvTranspose = true;
  /**
   * `--sync-bn` (data-parallel): sums a tensor over every rank, differentiably (its backward sums
   * the gradients too). When set, training-mode batch norm normalises with the statistics of the
   * global batch, as PyTorch's SyncBatchNorm does.
   */
  std::function<torch::Tensor(const torch::Tensor&)> syncSum;

  /**
   * Runs every layer; `train` selects batch statistics (updating the running ones) and dropout.
   * `labels` [N, K]: a conditional spec's attribute rows (undefined for an unconditional one).
   */
  torch::Tensor forward(torch::Tensor x, bool train, DropoutSource& dropout, const torch::Tensor& labels = {}) const;
};

/** Parses `layers` (an array of layer objects) against the parameter table. */
Network parseNetwork(const Napi::Array& layers, const std::map<std::string, torch::Tensor>& params, bool channelsLast,
                     bool gemmConvTranspose);

}  // namespace cgt
