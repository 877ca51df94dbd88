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
//!   weights, a register-blocked matmul, fused attention), and the
//!   training forward and backward f32 models run on the CPU
//!   ([`cpu::train`], tested against candle's autograd);
//! - [`checkpointing`]: the training pass (activation checkpointing, the
//!   heads, the choice of engine);
//! - [`checkpoint`]: load and save an HF-layout directory.

pub mod checkpoint;
pub mod checkpointing;
pub mod config;
pub mod cpu;
pub mod critic;
pub mod generate;
pub mod gguf;
pub mod hub;
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

/// The dtype a stage computes in. Training keeps f32 master weights and
/// f32 optimizer state under either; inference loads the weights in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// 32-bit floats throughout (the fast path on the CPU).
    #[default]
    F32,
    /// bfloat16 weights and activations; norms, softmax and log-probs in f32.
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `cpu`, `cuda:N`, or `cuda`: GPU 0, or under an MPI job the rank's
/// local rank's GPU (each rank its own, as NCCL needs).
pub fn device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::new_cuda(dist::local_rank())?),
        s if s.starts_with("cuda:") => {
            let n: usize = s["cuda:".len()..].parse().map_err(|_| {
                ModelError::Invalid(format!("bad device `{spec}`: use cpu, cuda or cuda:N"))
            })?;
            Ok(Device::new_cuda(n)?)
        }
        _ => Err(ModelError::Invalid(format!(
            "bad device `{spec}`: use cpu, cuda or cuda:N"
        ))),
    }
}

#[cfg(test)]
mod tests {
    /// `--device`: cpu, cuda, cuda:N; anything else is refused by name.
    #[test]
    fn device_names() {
        assert!(super::device("cpu").unwrap().is_cpu());
        for bad in ["gpu", "cuda:", "cuda:x", "cuda0", "cpu:0"] {
            let e = super::device(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
        // Without a GPU (or the CUDA build) cuda is an error, never the CPU.
        #[cfg(not(feature = "cuda"))]
        for name in ["cuda", "cuda:1"] {
            assert!(super::device(name).is_err(), "{name}");
        }
    }
}
