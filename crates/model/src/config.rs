//! HF config.json for Llama- and Qwen2-family decoders, read unchanged.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama's switch for q/k/v/o biases; Qwen2 always has q/k/v biases.
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub bos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    /// The MLP's activation; the model code implements SiLU only.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// RoPE scaling (Llama 3.1's, YaRN): not implemented, so refused.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Qwen2's sliding-window attention: not implemented, so refused when on.
    #[serde(default)]
    pub use_sliding_window: bool,
}

/// The `model_type`s the model code implements: Llama (SmolLM2 too) and
/// Qwen2 (Qwen2.5, Qwen2.5-Math).
pub const MODEL_TYPES: [&str; 2] = ["llama", "qwen2"];

fn default_act() -> String {
    "silu".into()
}

fn default_model_type() -> String {
    "llama".into()
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    4096
}

impl Config {
    /// An error naming the first field that cannot make a model: a model
    /// type, activation, RoPE scaling or sliding window it does not
    /// implement, a zero
    /// size or count, heads that do not divide the width or each other,
    /// a non-positive epsilon or rope base.
    pub fn validate(&self) -> Result<(), String> {
        if !MODEL_TYPES.contains(&self.model_type.as_str()) {
            return Err(format!(
                "`model_type` is {:?}; the model code implements {}",
                self.model_type,
                MODEL_TYPES.join(" and ")
            ));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "`hidden_act` is {:?}; the model code implements \"silu\" only",
                self.hidden_act
            ));
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err("`rope_scaling` is set; the model code implements plain RoPE only".into());
        }
        if self.use_sliding_window {
            return Err(
                "`use_sliding_window` is true; the model code implements full attention only"
                    .into(),
            );
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_kv_heads()),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return Err(format!("`{name}` is 0; it must be at least 1"));
            }
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "`hidden_size` {} is not a multiple of `num_attention_heads` {} (and no `head_dim` is given)",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.head_dim == Some(0) {
            return Err("`head_dim` is 0; it must be at least 1".into());
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "`head_dim` {} is odd; rope needs an even one",
                self.head_dim()
            ));
        }
        if !self.num_attention_heads.is_multiple_of(self.num_kv_heads()) {
            return Err(format!(
                "`num_attention_heads` {} is not a multiple of `num_key_value_heads` {}",
                self.num_attention_heads,
                self.num_kv_heads()
            ));
        }
        for (name, v) in [
            ("rms_norm_eps", self.rms_norm_eps),
            ("rope_theta", self.rope_theta),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("`{name}` is {v}; it must be a finite number > 0"));
            }
        }
        Ok(())
    }

    /// The number of parameters of a decoder of this shape, in f64 so a
    /// config with absurd sizes (vocab 1e12, 1e6 layers) cannot overflow
    /// into a small number.
    pub fn param_count(&self) -> f64 {
        let f = |x: usize| x as f64;
        let (h, i, v) = (
            f(self.hidden_size),
            f(self.intermediate_size),
            f(self.vocab_size),
        );
        let q = f(self.num_attention_heads) * f(self.head_dim());
        let k = f(self.num_kv_heads()) * f(self.head_dim());
        let bias = if self.qkv_bias() { q + 2.0 * k } else { 0.0 };
        let layer = h * (q + 2.0 * k) + bias + q * h + 3.0 * h * i + 2.0 * h;
        let head = if self.tie_word_embeddings { 0.0 } else { v * h };
        v * h + f(self.num_hidden_layers) * layer + h + head
    }

    /// Bytes a model of this shape holds at `dtype_bytes` a value: its
    /// weights and its RoPE cos/sin tables (max_position_embeddings x
    /// head_dim / 2 each).
    pub fn model_bytes(&self, dtype_bytes: usize) -> f64 {
        let rope = 2.0 * self.max_position_embeddings as f64 * (self.head_dim() / 2) as f64;
        (self.param_count() + rope) * dtype_bytes as f64
    }

    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }
    /// Whether q/k/v projections carry a bias (Qwen2; Llama with attention_bias).
    pub fn qkv_bias(&self) -> bool {
        self.model_type == "qwen2" || self.attention_bias == Some(true)
    }
    /// Whether the output projection carries a bias (Llama with attention_bias).
    pub fn o_bias(&self) -> bool {
        self.model_type != "qwen2" && self.attention_bias == Some(true)
    }
    /// The end-of-sequence ids (config.json may give one or a list).
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|x| vec![x as u32]).unwrap_or_default()
            }
            Some(serde_json::Value::Array(xs)) => xs
                .iter()
                .filter_map(|x| x.as_u64().map(|x| x as u32))
                .collect(),
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(field: &str, value: serde_json::Value) -> Result<(), String> {
        let mut v = serde_json::json!({
            "model_type": "llama", "vocab_size": 61, "hidden_size": 32,
            "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
        });
        v[field] = value;
        serde_json::from_value::<Config>(v).unwrap().validate()
    }

    #[test]
    fn what_the_model_code_does_not_implement_is_refused() {
        assert!(with("hidden_act", "silu".into()).is_ok());
        assert!(with("model_type", "qwen2".into()).is_ok());
        assert!(with("rope_scaling", serde_json::Value::Null).is_ok());
        let e = with("model_type", "gpt2".into()).unwrap_err();
        assert!(e.contains("`model_type` is \"gpt2\""), "{e}");
        let e = with("hidden_act", "relu6".into()).unwrap_err();
        assert!(e.contains("`hidden_act` is \"relu6\""), "{e}");
        let yarn = serde_json::json!({"type": "yarn", "factor": 4.0});
        assert!(with("rope_scaling", yarn)
            .unwrap_err()
            .contains("rope_scaling"));
        assert!(with("use_sliding_window", true.into())
            .unwrap_err()
            .contains("sliding"));
    }
}
