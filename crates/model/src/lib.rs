//! The language model every stage runs on: Llama- and Qwen2-family
//! decoders configured from an HF config.json, with weights from HF
//! safetensors, written back in HF layout.
//!
//! Unlike candle-transformers' llama/qwen2 it is built only from
//! differentiable ops (no fused softmax / rms_norm / rope, which drop
//! gradients), returns every position's output, takes padded batches, and
//! keeps the KV cache outside the layers.
//!
//! - [`config::Config`]: HF config.json, unchanged;
//! - [`model::Model`]: the decoder; [`model::Model::token_logprobs`] is the
//!   training forward;
//! - [`generate`]: batched KV-cache sampling with per-token log-probs;
//! - [`cpu`]: the inference forward generation runs on the CPU (packed
//!   weights, a register-blocked matmul, fused attention);
//! - [`checkpoint`]: load and save an HF-layout directory.

pub mod checkpoint;
pub mod checkpointing;
pub mod config;
pub mod cpu;
pub mod critic;
pub mod generate;
pub mod gguf;
pub mod logprob;
pub mod model;
pub mod tiny;
pub mod tokenizer;

pub use candle_core::{DType, Device, Tensor};
pub use checkpoint::Checkpoint;
pub use config::Config;
pub use critic::Critic;
pub use model::Model;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// `cpu` or `cuda:N`.
pub fn device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s.starts_with("cuda") => {
            let ordinal = s
                .strip_prefix("cuda")
                .and_then(|r| r.strip_prefix(':'))
                .unwrap_or("0");
            let n: usize = ordinal.parse().map_err(|_| {
                ModelError::Invalid(format!("bad device `{spec}`: use cpu or cuda:N"))
            })?;
            Ok(Device::new_cuda(n)?)
        }
        _ => Err(ModelError::Invalid(format!(
            "bad device `{spec}`: use cpu or cuda:N"
        ))),
    }
}
