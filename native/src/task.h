// One way to run blocking libtorch work (a training step, a collective) off the JS thread: an
// N-API AsyncWorker on libuv's pool that settles a promise. Used by engine.cc and dist.cc.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <string>

#include "dist.h"

namespace cgt {

/**
 * Runs `work` on the libuv pool; resolves with what `done` makes of the result on the JS thread.
 * A dist::DistError keeps its code and lost rank (JavaScript maps them: src/distributed/group.ts);
 * any other exception becomes `message(e)` with `fallbackCode` (no code when empty).
 */
template <typename R>
class Task : public Napi::AsyncWorker {
 public:
  using Message = std::string (*)(const std::exception&);
  Task(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done, Message message,
       std::string fallbackCode = "")
      : Napi::AsyncWorker(env, "celeba-gan-torch"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)), message_(message), fallbackCode_(std::move(fallbackCode)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (const dist::DistError& e) {
      code_ = e.code;
      lostRank_ = e.lostRank;
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = fallbackCode_;
      SetError(message_(e));
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(done_(Env(), result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::Object err = e.Value();
    if (!code_.empty()) {
      err.Set("code", code_);
      if (lostRank_ >= 0) err.Set("lostRank", lostRank_);
    }
    deferred_.Reject(err);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<R()> work_;
  std::function<Napi::Value(Napi::Env, R&)> done_;
  Message message_;
  std::string fallbackCode_;
  R result_{};
  std::string code_;
  int lostRank_ = -1;
};

}  // namespace cgt
