//! The memory plan of a training step: its peak estimated by part before
//! anything is loaded, printed, and checked against `--max-memory`.
//!
//! A step goes through three phases; its peak is the largest:
//! 1. scoring: every model's weights (the reference's too), the optimizer
//!    state a resumed run loads, one no-gradient forward (one layer's
//!    intermediates and a chunk of the head's logits);
//! 2. training: the trained models' weights, their gradients (f32, summed
//!    over micro-batches), the optimizer state when it already exists, one
//!    micro-batch's forward and backward;
//! 3. the optimizer step: weights, gradients and both AdamW moments (f32).
//!
//! The activation terms count the tensors the decoder keeps for its
//! backward pass (see `model::model`): per layer, ten hidden-sized,
//! nine query-sized, eight key-sized and five MLP-sized tensors in the
//! compute dtype, and five f32 score matrices (softmax runs in f32); with
//! checkpointing, the layers' inputs plus one layer at a time.

use model::checkpointing::head_rows;
use model::{Config, Precision};

/// How a trainer keeps memory and the dtype it computes in.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct MemoryOptions {
    /// Compute dtype of the forward and backward passes: bf16 runs over
    /// f32 master weights with f32 AdamW moments.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Precision::F32))]
    pub dtype: Precision,
    /// Keep only each decoder layer's input in the forward pass and
    /// recompute the layer in the backward pass (a fraction of the
    /// activation memory for about a third more compute).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = true, action = clap::ArgAction::Set))]
    pub grad_checkpointing: bool,
    /// Stop before loading anything when the memory plan's peak exceeds
    /// this many GB [default: the memory available now]. [range: > 0]
    #[cfg_attr(feature = "clap", arg(long, value_parser = flags::positive))]
    pub max_memory: Option<f64>,
    /// Under an MPI job of N ranks (mpirun -np N), each rank keeps the
    /// AdamW moments of about 1/N of the parameters (ZeRO stage 1): the
    /// gradients are reduced to each parameter's owner, the owner steps
    /// it, and the new weights are broadcast. The same weights as without
    /// it; the optimizer state per rank falls as 1/N.
    #[cfg_attr(feature = "clap", arg(long))]
    pub shard_optimizer: bool,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            dtype: Precision::F32,
            grad_checkpointing: true,
            max_memory: None,
            shard_optimizer: false,
        }
    }
}

const GB: f64 = 1e9;

/// What the process holds besides the tensors (code, tokenizer, the
/// batch, allocator slack): measured on SmolLM2 steps.
const BASELINE: f64 = 0.25 * GB;

/// A model in a step.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub name: &'static str,
    pub cfg: Config,
    /// bytes per weight as held (f32 master weights: 4)
    pub weight_bytes: f64,
    /// trained (gradients and AdamW moments), or only scored
    pub trained: bool,
    /// its optimizer state is loaded at the start (a resumed run)
    pub resumed: bool,
    /// it is freed after scoring (the reference)
    pub scoring_only: bool,
    /// with a value head instead of the language-model head
    pub value_head: bool,
    /// trained by the CPU training pass (f32 on the CPU,
    /// `model::cpu::train`), which keeps less than candle's graph
    pub cpu_pass: bool,
}

/// The number of parameters of a decoder with `cfg`'s shape
/// ([`Config::param_count`]; saturating for absurd shapes).
pub fn param_count(cfg: &Config) -> usize {
    cfg.param_count() as usize
}

/// The shape of one micro-batch: rows, the longest sequence, and the
/// positions whose log-probs are asked for per row.
#[derive(Debug, Clone, Copy)]
pub struct MicroShape {
    pub rows: usize,
    pub seq_len: usize,
    pub response_len: usize,
}

/// Bytes of one decoder layer's kept intermediates for a forward pass.
fn layer_kept(cfg: &Config, m: MicroShape, s: f64) -> f64 {
    let bt = (m.rows * m.seq_len) as f64;
    let (h, i) = (cfg.hidden_size as f64, cfg.intermediate_size as f64);
    let q = (cfg.num_attention_heads * cfg.head_dim()) as f64;
    let k = (cfg.num_kv_heads() * cfg.head_dim()) as f64;
    let scores = (m.rows * cfg.num_attention_heads * m.seq_len * m.seq_len) as f64;
    // bf16: the scores are also kept in bf16 before and after the f32 softmax
    let score_bytes = 20.0 + if s < 4.0 { 2.0 * s } else { 0.0 };
    bt * (10.0 * h + 9.0 * q + 8.0 * k + 5.0 * i) * s + scores * score_bytes
}

/// Bytes of one layer's forward and backward at once: its kept
/// intermediates, the gradients alive while it is differentiated (about
/// half as much again) and, in bf16, its weights cast for the pass.
fn layer_pass(cfg: &Config, m: MicroShape, s: f64) -> f64 {
    let cast = if s < 4.0 {
        (cfg.param_count() - cfg.vocab_size as f64 * cfg.hidden_size as f64)
            / cfg.num_hidden_layers as f64
            * s
    } else {
        0.0
    };
    1.5 * layer_kept(cfg, m, s) + cast
}

/// Bytes of the language-model head on `rows` rows: logits in the
/// compute dtype, their f32 copy (16-bit only) and their gradient, the
/// head weight's gradient (f32) and, 16-bit, the weight cast for the pass.
fn lm_head(cfg: &Config, rows: usize, m: MicroShape, s: f64) -> f64 {
    let n = (rows * m.response_len * cfg.vocab_size) as f64;
    let weight = cfg.vocab_size as f64 * cfg.hidden_size as f64;
    let half = s < 4.0;
    n * (s + if half { 4.0 } else { 0.0 } + 4.0) + weight * (4.0 + if half { s } else { 0.0 })
}

/// Activation bytes of one micro-batch's forward and backward.
pub fn train_activations(
    cfg: &Config,
    m: MicroShape,
    s: f64,
    checkpointing: bool,
    value_head: bool,
) -> f64 {
    let hidden = (m.rows * m.seq_len * cfg.hidden_size) as f64;
    let head_all = if value_head {
        0.0
    } else {
        lm_head(cfg, m.rows, m, s)
    };
    let l = cfg.num_hidden_layers as f64;
    if checkpointing {
        let rows = head_rows(cfg, m.response_len).min(m.rows);
        let head = if value_head {
            0.0
        } else {
            lm_head(cfg, rows, m, s)
        };
        // inputs of every layer, the gradient flowing down, one layer
        l * hidden * s + 2.0 * hidden * 4.0 + layer_pass(cfg, m, s).max(head)
    } else {
        l * layer_kept(cfg, m, s) + 0.5 * layer_kept(cfg, m, s) + head_all
    }
}

/// Activation bytes of one micro-batch's forward and backward on the CPU
/// training pass (f32, `model::cpu::train`): every layer's kept
/// activations (input, q/k/v, attention's output and log-sum-exp, x +
/// attention, gate and up, the norms' 1/rms) or, checkpointing, every
/// layer's input and one layer's; the temporaries of one layer's backward
/// pass and its weights' gradients; the fused head's logits (all of them
/// kept, or a 512-token chunk when checkpointing) and its weight's
/// gradient.
fn cpu_pass_activations(cfg: &Config, m: MicroShape, checkpointing: bool, value_head: bool) -> f64 {
    let tokens = (m.rows * m.seq_len) as f64;
    let (h, i) = (cfg.hidden_size as f64, cfg.intermediate_size as f64);
    let nh = cfg.num_attention_heads as f64;
    let q = (cfg.num_attention_heads * cfg.head_dim()) as f64;
    let w = q + 2.0 * (cfg.num_kv_heads() * cfg.head_dim()) as f64;
    let kept = tokens * (2.0 * h + 2.0 + w + nh + q + 2.0 * i) * 4.0;
    let layer_params = (cfg.param_count() - cfg.vocab_size as f64 * cfg.hidden_size as f64)
        / cfg.num_hidden_layers as f64;
    let temporaries = tokens * (4.0 * i + 5.0 * h + q + w) * 4.0 + layer_params * 4.0;
    let l = cfg.num_hidden_layers as f64;
    let layers = if checkpointing {
        l * tokens * h * 4.0 + kept
    } else {
        l * kept
    };
    let head = if value_head {
        0.0
    } else {
        let v = cfg.vocab_size as f64;
        let outputs = (m.rows * m.response_len) as f64;
        let chunk = outputs.min(512.0);
        let logits = if checkpointing {
            chunk
        } else {
            outputs + chunk
        };
        logits * v * 4.0 + v * h * 4.0
    };
    layers + temporaries + head
}

/// Activation bytes of a no-gradient forward (one layer at a time, the
/// head in row chunks, no gradients).
pub fn score_activations(cfg: &Config, m: MicroShape, s: f64, value_head: bool) -> f64 {
    let rows = head_rows(cfg, m.response_len).min(m.rows);
    let head = if value_head {
        0.0
    } else {
        (rows * m.response_len * cfg.vocab_size) as f64 * (s + 4.0)
    };
    layer_kept(cfg, m, s).max(head) + 2.0 * (m.rows * m.seq_len * cfg.hidden_size) as f64 * s
}

/// A step's memory plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// (part, bytes) at the peak phase, in order
    pub parts: Vec<(String, f64)>,
    /// the peak phase's name
    pub phase: &'static str,
}

impl Plan {
    /// The estimated peak in bytes.
    pub fn peak(&self) -> f64 {
        self.parts.iter().map(|(_, b)| b).sum()
    }

    /// One line: the peak and its parts.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(n, b)| format!("{n} {:.2}", b / GB))
            .collect();
        format!(
            "memory plan: peak {:.2} GB ({}): {}",
            self.peak() / GB,
            self.phase,
            parts.join(", ")
        )
    }
}

/// The plan of a step over `models` with micro-batches of `micro`;
/// `steps` optimizer steps (with more than one, or a resumed state, the
/// moments exist while gradients are computed).
pub fn plan(models: &[ModelPlan], micro: MicroShape, opts: &MemoryOptions, steps: usize) -> Plan {
    let s = opts.dtype.dtype().size_in_bytes() as f64;
    let n = |m: &ModelPlan| param_count(&m.cfg) as f64;
    let weights = |m: &ModelPlan| (format!("{} weights", m.name), n(m) * m.weight_bytes);
    // Sharded over an N-rank job, a rank keeps about 1/N of the moments.
    let ranks = dist::world().size() as f64;
    let share = if opts.shard_optimizer { ranks } else { 1.0 };
    let moments = |m: &ModelPlan| (format!("{} AdamW moments", m.name), n(m) * 8.0 / share);
    let grads = |m: &ModelPlan| (format!("{} gradients", m.name), n(m) * 4.0);
    let base = ("runtime".to_string(), BASELINE);
    // 1. scoring
    let mut scoring = vec![base.clone()];
    scoring.extend(models.iter().map(weights));
    scoring.extend(
        models
            .iter()
            .filter(|m| m.trained && m.resumed)
            .map(moments),
    );
    let score_act = models
        .iter()
        .map(|m| score_activations(&m.cfg, micro, s, m.value_head))
        .fold(0.0, f64::max);
    scoring.push(("activations (no-gradient forward)".into(), score_act));
    // 2. training
    let trained: Vec<&ModelPlan> = models.iter().filter(|m| m.trained).collect();
    let mut training = vec![base.clone()];
    training.extend(models.iter().filter(|m| !m.scoring_only).map(weights));
    training.extend(trained.iter().map(|m| grads(m)));
    training.extend(
        trained
            .iter()
            .filter(|m| m.resumed || steps > 1)
            .map(|m| moments(m)),
    );
    let act = trained
        .iter()
        .map(|m| match m.cpu_pass {
            true => cpu_pass_activations(&m.cfg, micro, opts.grad_checkpointing, m.value_head),
            false => train_activations(&m.cfg, micro, s, opts.grad_checkpointing, m.value_head),
        })
        .fold(0.0, f64::max);
    let what = if opts.grad_checkpointing {
        "activations (one micro-batch, checkpointed)"
    } else {
        "activations (one micro-batch)"
    };
    training.push((what.into(), act));
    // 3. the optimizer step
    let mut stepping = vec![base];
    stepping.extend(models.iter().filter(|m| !m.scoring_only).map(weights));
    stepping.extend(trained.iter().map(|m| grads(m)));
    stepping.extend(trained.iter().map(|m| moments(m)));
    let phases = [
        ("scoring", scoring),
        ("training", training),
        ("optimizer step", stepping),
    ];
    let total = |p: &Vec<(String, f64)>| p.iter().map(|(_, b)| b).sum::<f64>();
    let (phase, parts) = phases
        .into_iter()
        .max_by(|a, b| total(&a.1).total_cmp(&total(&b.1)))
        .expect("three phases");
    Plan { parts, phase }
}

/// The plan for `micro`, or an error when it exceeds the limit
/// (`--max-memory`, else the memory available): the message gives the
/// estimate and the largest micro-batch that would fit.
pub fn check(
    models: &[ModelPlan],
    micro: MicroShape,
    opts: &MemoryOptions,
    steps: usize,
) -> crate::Result<Plan> {
    let p = plan(models, micro, opts, steps);
    let (limit, source) = match opts.max_memory {
        Some(gb) => (gb * GB, "--max-memory"),
        None => match dist::available_memory() {
            Some(b) => (b, "the memory available"),
            None => return Ok(p),
        },
    };
    if p.peak() <= limit {
        return Ok(p);
    }
    let fits = (1..micro.rows)
        .rev()
        .find(|&rows| plan(models, MicroShape { rows, ..micro }, opts, steps).peak() <= limit);
    let advice = match fits {
        Some(rows) => {
            format!("the largest micro-batch that fits is {rows} (--micro-batch-size {rows})")
        }
        None => {
            let hint = if opts.grad_checkpointing {
                ""
            } else {
                ", or --grad-checkpointing true"
            };
            format!("not even a micro-batch of 1 fits: use a machine with more memory{hint}")
        }
    };
    Err(crate::TrainError::Invalid(format!(
        "the step needs an estimated {:.2} GB at its peak ({}), more than {source} ({:.2} GB); {advice}. {}",
        p.peak() / GB,
        p.phase,
        limit / GB,
        p.describe()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen05() -> Config {
        serde_json::from_value(serde_json::json!({
            "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "max_position_embeddings": 32768, "tie_word_embeddings": true,
        }))
        .unwrap()
    }

    #[test]
    fn qwen_05b_has_its_published_parameter_count() {
        // Qwen2.5-0.5B: 494,032,768 parameters (tied embeddings).
        assert_eq!(param_count(&qwen05()), 494_032_768);
    }

    fn ppo_models(cfg: &Config) -> Vec<ModelPlan> {
        let m = |name, trained, scoring_only, value_head| ModelPlan {
            name,
            cfg: cfg.clone(),
            weight_bytes: 4.0,
            trained,
            resumed: false,
            scoring_only,
            value_head,
            cpu_pass: false,
        };
        vec![
            m("policy", true, false, false),
            m("critic", true, false, true),
            m("reference", false, true, false),
        ]
    }

    #[test]
    fn a_step_that_cannot_fit_names_its_estimate_and_the_micro_batch_that_fits() {
        let micro = MicroShape {
            rows: 8,
            seq_len: 1024,
            response_len: 1000,
        };
        let opts = MemoryOptions {
            max_memory: Some(4.0),
            ..Default::default()
        };
        let e = check(&ppo_models(&qwen05()), micro, &opts, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than --max-memory (4.00 GB)"), "{e}");
        assert!(e.contains("not even a micro-batch of 1 fits"), "{e}");
        // Many optimizer steps: the moments exist while gradients are computed.
        let opts = MemoryOptions {
            max_memory: Some(19.0),
            ..Default::default()
        };
        let e = check(&ppo_models(&qwen05()), micro, &opts, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the largest micro-batch that fits is"), "{e}");
        let rows: usize = e
            .split("--micro-batch-size ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let fits = plan(
            &ppo_models(&qwen05()),
            MicroShape { rows, ..micro },
            &opts,
            4,
        )
        .peak();
        let over = plan(
            &ppo_models(&qwen05()),
            MicroShape {
                rows: rows + 1,
                ..micro
            },
            &opts,
            4,
        )
        .peak();
        assert!(fits <= 19.0 * GB && over > 19.0 * GB);
    }

    #[test]
    fn checkpointing_and_smaller_batches_need_less() {
        let cfg = qwen05();
        let m = MicroShape {
            rows: 2,
            seq_len: 1024,
            response_len: 1000,
        };
        let plain = train_activations(&cfg, m, 4.0, false, false);
        let ckpt = train_activations(&cfg, m, 4.0, true, false);
        assert!(ckpt < plain / 3.0, "{ckpt} vs {plain}");
        let half = train_activations(&cfg, MicroShape { rows: 1, ..m }, 4.0, false, false);
        assert!(half < plain);
    }
}
