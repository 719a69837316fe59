{
  # Built by native/build.mjs, which finds libtorch and passes its paths in the environment
  # (CELEBA_GAN_TORCH_*). Run `npm run build:native` rather than node-gyp directly.
  "targets": [
    {
      "target_name": "celeba_gan_torch",
      "sources": ["src/addon.cc", "src/network.cc", "src/engine.cc", "src/system.cc", "src/dist.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node -p \"process.env.CELEBA_GAN_TORCH_INCLUDES || ''\")"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "<!@(node -p \"process.env.CELEBA_GAN_TORCH_DEFINES || ''\")"],
      # libtorch needs exceptions (c10::Error) and RTTI; node-gyp turns both off by default.
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-Wno-deprecated-declarations",
                    # build.mjs's precompiled <torch/torch.h> (-include build/pch/torch-pch.h), or nothing.
                    "<!@(node -p \"process.env.CELEBA_GAN_TORCH_PCH || ''\")"],
      "ldflags": ["<!@(node -p \"process.env.CELEBA_GAN_TORCH_LDFLAGS || ''\")"],
      "libraries": ["<!@(node -p \"process.env.CELEBA_GAN_TORCH_LIBS || ''\")"]
    }
  ]
}
