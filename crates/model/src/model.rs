//! The decoder, from differentiable ops only, on padded batches, returning
//! every position, with the KV cache kept by the caller.

use candle_core::{DType, Device, IndexOp, Module, Tensor, D};
use candle_nn::{embedding, Embedding, Init, VarBuilder};

use crate::{Config, Result};

/// The dtype reductions run in: f32 for the 16-bit types, else the
/// dtype itself.
pub(crate) fn wide(dt: DType) -> DType {
    match dt {
        DType::BF16 | DType::F16 => DType::F32,
        d => d,
    }
}

/// Finite "minus infinity" for masks: exp() of it is exactly 0 in f32, and
/// a fully masked row can never produce NaN.
const MASKED: f64 = -1e9;

#[derive(Debug, Clone)]
pub(crate) struct RmsNorm {
    pub(crate) weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", Init::Const(1.0))?,
            eps,
        })
    }
    /// In f32 for 16-bit inputs (as HF's LlamaRMSNorm), then
    /// scaled in the input's dtype.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let xf = x.to_dtype(wide(dt))?;
        let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let xf = xf.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        Ok(xf.to_dtype(dt)?.broadcast_mul(&self.weight.to_dtype(dt)?)?)
    }
}

/// A linear layer `y = x W^T + b` whose weights are cast to the input's
/// dtype: f32 master weights serve a bf16 forward, and the gradients
/// flow back to them in f32.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub(crate) fn weight(&self) -> &Tensor {
        &self.weight
    }
    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let l = candle_nn::Linear::new(
            self.weight.to_dtype(dt)?,
            self.bias.as_ref().map(|b| b.to_dtype(dt)).transpose()?,
        );
        Ok(l.forward(x)?)
    }
}

/// A linear layer `in_dim -> out_dim` named as HF names it under `vb`.
pub(crate) fn linear_b(
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    vb: VarBuilder,
) -> Result<Linear> {
    let l = candle_nn::linear_b(in_dim, out_dim, bias, vb)?;
    Ok(Linear {
        weight: l.weight().clone(),
        bias: l.bias().cloned(),
    })
}

/// Rotary embeddings in HF's rotate-half layout, from a cos/sin table.
#[derive(Debug, Clone)]
pub(crate) struct Rope {
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
}

impl Rope {
    fn new(cfg: &Config, dtype: DType, dev: &Device) -> Result<Self> {
        let d = cfg.head_dim();
        let inv: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / (cfg.rope_theta as f32).powf(2.0 * i as f32 / d as f32))
            .collect();
        let n = cfg.max_position_embeddings;
        let inv = Tensor::from_vec(inv, (1, d / 2), dev)?;
        let pos = Tensor::arange(0u32, n as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((n, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    /// x: [B, H, T, D]; positions: [B, T] (u32).
    fn apply(&self, x: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let (b, _h, t, d) = x.dims4()?;
        let flat = positions.flatten_all()?;
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, 1, t, d / 2))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, 1, t, d / 2))?;
        let x1 = x.narrow(D::Minus1, 0, d / 2)?;
        let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
        let a = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
        let b2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
        Ok(Tensor::cat(&[a, b2], D::Minus1)?)
    }
}

/// Softmax over the last dimension from exp/sum (differentiable).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub(crate) q_proj: Linear,
    pub(crate) k_proj: Linear,
    pub(crate) v_proj: Linear,
    pub(crate) o_proj: Linear,
    n_heads: usize,
    n_kv: usize,
    head_dim: usize,
}

/// Keys and values of every layer, preallocated to a capacity and filled
/// in place: [B, n_kv, capacity, head_dim] per layer, the first `len`
/// positions valid.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    pub len: usize,
    pub capacity: usize,
}

impl KvCache {
    pub fn new(model: &Model, batch: usize, capacity: usize) -> Result<KvCache> {
        let cfg = &model.cfg;
        let shape = (batch, cfg.num_kv_heads(), capacity, cfg.head_dim());
        let zeros = || Tensor::zeros(shape, model.dtype, &model.device);
        let n = cfg.num_hidden_layers;
        Ok(KvCache {
            k: (0..n)
                .map(|_| zeros())
                .collect::<candle_core::Result<_>>()?,
            v: (0..n)
                .map(|_| zeros())
                .collect::<candle_core::Result<_>>()?,
            len: 0,
            capacity,
        })
    }
}

impl Attention {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (h, nh, nkv, hd) = (
            cfg.hidden_size,
            cfg.num_attention_heads,
            cfg.num_kv_heads(),
            cfg.head_dim(),
        );
        let bias = cfg.qkv_bias();
        Ok(Self {
            q_proj: linear_b(h, nh * hd, bias, vb.pp("q_proj"))?,
            k_proj: linear_b(h, nkv * hd, bias, vb.pp("k_proj"))?,
            v_proj: linear_b(h, nkv * hd, bias, vb.pp("v_proj"))?,
            o_proj: linear_b(nh * hd, h, cfg.o_bias(), vb.pp("o_proj"))?,
            n_heads: nh,
            n_kv: nkv,
            head_dim: hd,
        })
    }

    /// With a cache (layer `layer`), the new keys and values are written
    /// into it at `cache.len` and attention reads the valid prefix.
    fn forward(
        &self,
        x: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        rope: &Rope,
        cache: Option<(&KvCache, usize)>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let heads = |p: &Linear, n: usize| -> Result<Tensor> {
            Ok(p.forward(x)?
                .reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = rope.apply(&heads(&self.q_proj, self.n_heads)?, positions)?;
        let k = rope.apply(&heads(&self.k_proj, self.n_kv)?, positions)?;
        let v = heads(&self.v_proj, self.n_kv)?;
        let (k, v) = match cache {
            Some((c, layer)) => {
                if c.len + t > c.capacity {
                    return Err(crate::ModelError::Invalid(format!(
                        "KV cache full: {} + {t} > {}",
                        c.len, c.capacity
                    )));
                }
                c.k[layer].slice_set(&k, 2, c.len)?;
                c.v[layer].slice_set(&v, 2, c.len)?;
                (
                    c.k[layer].narrow(2, 0, c.len + t)?,
                    c.v[layer].narrow(2, 0, c.len + t)?,
                )
            }
            None => (k, v),
        };
        // Grouped-query attention without copying keys: the `rep` query
        // heads that share a key head become rows of one matrix.
        let rep = self.n_heads / self.n_kv;
        let s = k.dim(2)?;
        let q = q.reshape((b, self.n_kv, rep * t, self.head_dim))?;
        let mask = if rep == 1 {
            mask.clone()
        } else {
            mask.unsqueeze(2)?
                .broadcast_as((b, 1, rep, t, s))?
                .reshape((b, 1, rep * t, s))?
        };
        // Scores in the compute dtype, the mask and softmax in f32 (as
        // HF's eager attention), the product with the values back in it.
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q * scale)?.matmul(&k.t()?)?;
        let wd = wide(scores.dtype());
        let scores = scores.to_dtype(wd)?.broadcast_add(&mask.to_dtype(wd)?)?;
        let att = softmax_last(&scores)?.to_dtype(v.dtype())?;
        let out = att
            .matmul(&v)?
            .reshape((b, self.n_heads, t, self.head_dim))?
            .transpose(1, 2)?
            .reshape((b, t, self.n_heads * self.head_dim))?;
        self.o_proj.forward(&out)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    pub(crate) gate_proj: Linear,
    pub(crate) up_proj: Linear,
    pub(crate) down_proj: Linear,
}

impl Mlp {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: linear_b(h, i, false, vb.pp("gate_proj"))?,
            up_proj: linear_b(h, i, false, vb.pp("up_proj"))?,
            down_proj: linear_b(i, h, false, vb.pp("down_proj"))?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate_proj.forward(x)?;
        let silu = (&g * candle_nn::ops::sigmoid(&g)?)?;
        self.down_proj.forward(&(silu * self.up_proj.forward(x)?)?)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) self_attn: Attention,
    pub(crate) mlp: Mlp,
    pub(crate) input_layernorm: RmsNorm,
    pub(crate) post_attention_layernorm: RmsNorm,
}

/// The decoder.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) embed_tokens: Embedding,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: RmsNorm,
    pub(crate) lm_head: Option<Linear>,
    pub(crate) rope: Rope,
    cfg: Config,
    device: Device,
    /// the compute dtype
    dtype: DType,
    param_dtype: DType,
}

/// A padded batch: token ids [B, T] (u32) and a 1/0 mask [B, T] of real
/// tokens (left or right padding).
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Tensor,
    pub mask: Tensor,
    pub positions: Tensor,
}

impl Batch {
    /// Left-pad `seqs` to one length with `pad` (generation batches).
    pub fn left_padded(seqs: &[Vec<u32>], pad: u32, dev: &Device) -> Result<Batch> {
        Self::padded(seqs, pad, dev, true)
    }

    /// Right-pad `seqs` to one length with `pad` (training batches).
    pub fn right_padded(seqs: &[Vec<u32>], pad: u32, dev: &Device) -> Result<Batch> {
        Self::padded(seqs, pad, dev, false)
    }

    /// Real tokens at positions 0..len; padding repeats a neighbouring
    /// position and is masked out.
    fn padded(seqs: &[Vec<u32>], pad: u32, dev: &Device, left: bool) -> Result<Batch> {
        let t = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let (mut ids, mut mask, mut pos) = (Vec::new(), Vec::new(), Vec::new());
        for s in seqs {
            let padn = t - s.len();
            let last = s.len().saturating_sub(1) as u32;
            let pad_part = || {
                (
                    std::iter::repeat_n(pad, padn),
                    std::iter::repeat_n(0u8, padn),
                )
            };
            let (pad_ids, pad_mask) = pad_part();
            let real = (
                s.iter().copied(),
                std::iter::repeat_n(1u8, s.len()),
                0..s.len() as u32,
            );
            if left {
                ids.extend(pad_ids.chain(real.0));
                mask.extend(pad_mask.chain(real.1));
                pos.extend(std::iter::repeat_n(0u32, padn).chain(real.2));
            } else {
                ids.extend(real.0.chain(pad_ids));
                mask.extend(real.1.chain(pad_mask));
                pos.extend(real.2.chain(std::iter::repeat_n(last, padn)));
            }
        }
        let b = seqs.len();
        Ok(Batch {
            ids: Tensor::from_vec(ids, (b, t), dev)?,
            mask: Tensor::from_vec(mask, (b, t), dev)?,
            positions: Tensor::from_vec(pos, (b, t), dev)?,
        })
    }
}

/// Prompt + response sequences as one right-padded batch, with where each
/// response sits in the training forward's `[B, T-1]` outputs: the input
/// of the RL and SFT losses.
#[derive(Debug, Clone)]
pub struct ResponseBatch {
    pub batch: Batch,
    /// `[B, R]` u32: for response token k of row b, its position in the
    /// forward's outputs (the logits that predict it); padding repeats
    /// a valid position and is masked.
    pub index: Tensor,
    /// `[B, R]` f32: 1 on real response tokens.
    pub mask: Tensor,
    /// R: the longest response (at least 1).
    pub width: usize,
}

impl ResponseBatch {
    /// `(prompt, response)` token id pairs; every prompt must be non-empty.
    pub fn new(pairs: &[(&[u32], &[u32])], pad: u32, dev: &Device) -> Result<ResponseBatch> {
        let seqs: Vec<Vec<u32>> = pairs.iter().map(|(p, r)| [*p, *r].concat()).collect();
        let batch = Batch::right_padded(&seqs, pad, dev)?;
        let width = pairs.iter().map(|(_, r)| r.len()).max().unwrap_or(0).max(1);
        let (mut index, mut mask) = (Vec::new(), Vec::new());
        for (p, r) in pairs {
            if p.is_empty() {
                return Err(crate::ModelError::Invalid(
                    "a response needs a non-empty prompt".into(),
                ));
            }
            let start = (p.len() - 1) as u32;
            for k in 0..width {
                let real = k < r.len();
                index.push(if real { start + k as u32 } else { start });
                mask.push(if real { 1f32 } else { 0.0 });
            }
        }
        let b = pairs.len();
        Ok(ResponseBatch {
            batch,
            index: Tensor::from_vec(index, (b, width), dev)?,
            mask: Tensor::from_vec(mask, (b, width), dev)?,
            width,
        })
    }
}

/// Per-token outputs of the training forward.
#[derive(Debug, Clone)]
pub struct TokenLogprobs {
    /// log p(ids[:, t+1] | ids[:, ..=t]): [B, T-1]
    pub logprobs: Tensor,
    /// entropy of the predicted distribution at each position: [B, T-1]
    pub entropy: Tensor,
}

impl Model {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let vbm = vb.pp("model");
        let embed_tokens = embedding(cfg.vocab_size, cfg.hidden_size, vbm.pp("embed_tokens"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let vl = vbm.pp(format!("layers.{i}"));
                Ok(Layer {
                    self_attn: Attention::new(cfg, vl.pp("self_attn"))?,
                    mlp: Mlp::new(cfg, vl.pp("mlp"))?,
                    input_layernorm: RmsNorm::new(
                        cfg.hidden_size,
                        cfg.rms_norm_eps,
                        vl.pp("input_layernorm"),
                    )?,
                    post_attention_layernorm: RmsNorm::new(
                        cfg.hidden_size,
                        cfg.rms_norm_eps,
                        vl.pp("post_attention_layernorm"),
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vbm.pp("norm"))?;
        let lm_head = if cfg.tie_word_embeddings {
            None
        } else {
            Some(linear_b(
                cfg.hidden_size,
                cfg.vocab_size,
                false,
                vb.pp("lm_head"),
            )?)
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope: Rope::new(cfg, vb.dtype(), vb.device())?,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
            param_dtype: vb.dtype(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The dtype of the activations (the compute dtype).
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The dtype the weights are stored in (f32 master weights may serve
    /// a bf16 forward).
    pub fn param_dtype(&self) -> DType {
        self.param_dtype
    }

    /// Compute in `dtype` whatever the weights' dtype: each weight is cast
    /// as it is used, so gradients reach the stored weights in their own
    /// dtype (mixed precision: bf16 compute over f32 master weights).
    pub fn set_compute_dtype(&mut self, dtype: DType) -> Result<()> {
        if dtype != self.dtype {
            self.rope = Rope::new(&self.cfg, dtype, &self.device)?;
            self.dtype = dtype;
        }
        Ok(())
    }

    /// The additive attention mask [B, 1, T, S] (f32: attention's softmax
    /// runs in f32) for `t` new queries over `s` keys (the last `t` keys
    /// are the new ones): causal, no padded keys; every query may see
    /// itself, so no row is empty.
    pub fn attention_mask(&self, key_mask: &[Vec<u8>], t: usize) -> Result<Tensor> {
        let b = key_mask.len();
        let s = key_mask.first().map(Vec::len).unwrap_or(0);
        let mut m = vec![0f32; b * t * s];
        for (bi, km) in key_mask.iter().enumerate() {
            for qi in 0..t {
                let qpos = s - t + qi;
                for (kj, &valid) in km.iter().enumerate() {
                    let visible = kj == qpos || (kj < qpos && valid == 1);
                    if !visible {
                        m[(bi * t + qi) * s + kj] = MASKED as f32;
                    }
                }
            }
        }
        Ok(Tensor::from_vec(m, (b, 1, t, s), &self.device)?)
    }

    /// The mask of a padded batch (every position a new query).
    pub fn batch_mask(&self, batch: &Batch) -> Result<Tensor> {
        let key_mask: Vec<Vec<u8>> = batch.mask.to_vec2::<u8>()?;
        self.attention_mask(&key_mask, batch.ids.dim(1)?)
    }

    /// The token embeddings of `ids`, in the compute dtype.
    pub(crate) fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.embed_tokens.forward(ids)?.to_dtype(self.dtype)?)
    }

    /// Decoder layer `i` on its input `x` [B, T, H].
    pub(crate) fn layer(
        &self,
        i: usize,
        x: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<Tensor> {
        let layer = &self.layers[i];
        let h = layer.input_layernorm.forward(x)?;
        let a = layer
            .self_attn
            .forward(&h, positions, mask, &self.rope, cache.map(|c| (c, i)))?;
        let x = (x + a)?;
        let h = layer.post_attention_layernorm.forward(&x)?;
        Ok((&x + layer.mlp.forward(&h)?)?)
    }

    /// The number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The last layer's output [B, T, H] (before the final norm) for `ids`
    /// at `positions`, attending to `cache` (when given: its valid prefix,
    /// then the new tokens, which are appended to it) under `mask`
    /// [B, 1, T, cache.len + T]. With `no_grad` each layer's output is
    /// detached, so no layer's intermediates outlive it.
    pub fn forward_trunk(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
        no_grad: bool,
    ) -> Result<Tensor> {
        let t = ids.dim(1)?;
        let mut x = self.embed(ids)?;
        for i in 0..self.layers.len() {
            x = self.layer(i, &x, positions, mask, cache.as_deref())?;
            if no_grad {
                x = x.detach();
            }
        }
        if let Some(c) = cache.as_mut() {
            c.len += t;
        }
        Ok(x)
    }

    /// Final hidden states [B, T, H]: [`Model::forward_trunk`], then the
    /// final norm.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let x = self.forward_trunk(ids, positions, mask, cache, false)?;
        self.norm.forward(&x)
    }

    /// The final norm on the last layer's output.
    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        self.norm.forward(x)
    }

    /// Logits for hidden states [.., H] -> [.., V], in the compute dtype.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.lm_head {
            Some(h) => h.forward(hidden),
            None => {
                let w = self.embed_tokens.embeddings().to_dtype(hidden.dtype())?;
                let dims = hidden.dims().to_vec();
                let h = *dims.last().expect("hidden has a last dim");
                let rows = hidden.elem_count() / h;
                let mut out_dims = dims.clone();
                *out_dims.last_mut().expect("dims") = w.dim(0)?;
                Ok(hidden
                    .reshape((rows, h))?
                    .matmul(&w.t()?)?
                    .reshape(out_dims)?)
            }
        }
    }

    /// The language-model head on the last layer's output `x` [b, T, H]
    /// of rows whose token ids are `ids` [b, T]: final norm, logits /
    /// `temperature` (in f32), the log-prob of each next token and each
    /// distribution's entropy ([b, T-1], or [b, R] at `index`, as
    /// [`Model::token_logprobs_at`]).
    pub fn logprob_head(
        &self,
        x: &Tensor,
        ids: &Tensor,
        temperature: f64,
        index: Option<&Tensor>,
        entropy_grad: bool,
    ) -> Result<TokenLogprobs> {
        let t = ids.dim(1)?;
        let hidden = self.norm.forward(&x.i((.., ..t - 1, ..))?)?;
        let targets = ids.i((.., 1..))?.contiguous()?;
        let (hidden, targets) = match index {
            Some(ix) => {
                let (b, r) = ix.dims2()?;
                let h = hidden.dim(2)?;
                let ix3 = ix.unsqueeze(2)?.broadcast_as((b, r, h))?.contiguous()?;
                (
                    hidden.contiguous()?.gather(&ix3, 1)?,
                    targets.gather(ix, 1)?,
                )
            }
            None => (hidden, targets),
        };
        let logits = self.logits(&hidden)?;
        let logits = logits.to_dtype(wide(logits.dtype()))?;
        let (logprobs, entropy) =
            crate::logprob::logprobs_and_entropy(&logits, &targets, temperature, entropy_grad)?;
        Ok(TokenLogprobs { logprobs, entropy })
    }

    /// The training forward: per-token log-probs of each next token and the
    /// entropy of each predicted distribution, for a padded batch, with
    /// logits divided by `temperature`. Gradients reach every parameter
    /// through the log-probs (through the entropy too when `entropy_grad`).
    ///
    /// Shapes: `batch.ids` [B, T] -> logprobs, entropy [B, T-1]; with
    /// `index` [B, R] (u32 positions into those T-1) only those positions
    /// are computed: [B, R]. The only vocabulary-sized tensor kept for the
    /// backward pass is the logits of the positions asked for.
    pub fn token_logprobs_at(
        &self,
        batch: &Batch,
        temperature: f64,
        index: Option<&Tensor>,
        entropy_grad: bool,
    ) -> Result<TokenLogprobs> {
        let mask = self.batch_mask(batch)?;
        let x = self.forward_trunk(&batch.ids, &batch.positions, &mask, None, false)?;
        self.logprob_head(&x, &batch.ids, temperature, index, entropy_grad)
    }

    /// [`Model::token_logprobs_at`] at every position, entropy without
    /// gradient: `batch.ids` [B, T] -> [B, T-1].
    pub fn token_logprobs(&self, batch: &Batch, temperature: f64) -> Result<TokenLogprobs> {
        self.token_logprobs_at(batch, temperature, None, false)
    }
}

/// The language-model head of a batch: the log-prob of each next token
/// and the entropy of each predicted distribution ([`Model::logprob_head`]),
/// at `index` ([B, R] positions) when given, else at every position.
pub struct LogprobHead<'a> {
    pub(crate) model: &'a Model,
    pub(crate) batch: &'a Batch,
    pub(crate) index: Option<&'a Tensor>,
    pub(crate) temperature: f64,
    pub(crate) entropy_grad: bool,
}
