//! The critic (value model): the policy's decoder with a scalar head on
//! the final hidden state, saved in HF layout as a
//! `*ForTokenClassification` with one label (`score.weight`,
//! `score.bias`), the shape verl's critics have, so transformers loads it.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::VarMap;

use crate::checkpoint::{build_complete, err, load_varmap, prepare_dir, read_config};
use crate::model::{linear_b, Batch, Linear};
use crate::{Config, Model, ModelError, Result};

pub struct Critic {
    pub dir: PathBuf,
    pub config: Config,
    pub raw_config: serde_json::Value,
    pub varmap: VarMap,
    /// The decoder without a language-model head.
    pub model: Model,
    /// hidden -> 1.
    pub score: Linear,
}

/// The trunk's config: the decoder alone needs no lm_head, so build it as
/// tied (the embedding is still loaded, the head never used).
fn trunk_config(cfg: &Config) -> Config {
    let mut c = cfg.clone();
    c.tie_word_embeddings = true;
    c
}

fn build(
    dir: &Path,
    cfg: &Config,
    varmap: &VarMap,
    device: &Device,
    dtype: DType,
) -> Result<(Model, Linear)> {
    let trunk = trunk_config(cfg);
    build_complete(dir, varmap, dtype, device, |vb| {
        let model = Model::new(&trunk, vb.clone())?;
        let score = linear_b(cfg.hidden_size, 1, true, vb.pp("score"))?;
        Ok((model, score))
    })
}

impl Critic {
    /// Load a critic saved by [`Critic::save_with`].
    pub fn load(dir: impl AsRef<Path>, device: &Device, dtype: DType) -> Result<Critic> {
        let dir = dir.as_ref().to_path_buf();
        let (config, raw_config) = read_config(&dir)?;
        crate::checkpoint::check_fits(&config, dtype, device)?;
        let varmap = load_varmap(&dir, device, dtype)?;
        if !varmap
            .data()
            .lock()
            .expect("varmap lock")
            .contains_key("score.weight")
        {
            return Err(err(
                &dir,
                "not a critic: no score.weight (a policy checkpoint?)",
            ));
        }
        let (model, score) = build(&dir, &config, &varmap, device, dtype)?;
        Ok(Critic {
            dir,
            config,
            raw_config,
            varmap,
            model,
            score,
        })
    }

    /// A new critic from a policy checkpoint: its decoder weights, no
    /// lm_head, and a value head initialised to zero (every value starts
    /// at 0, the middle of the reward range).
    pub fn from_policy(policy: impl AsRef<Path>, device: &Device, dtype: DType) -> Result<Critic> {
        let dir = policy.as_ref().to_path_buf();
        let (config, mut raw_config) = read_config(&dir)?;
        crate::checkpoint::check_fits(&config, dtype, device)?;
        let varmap = load_varmap(&dir, device, dtype)?;
        {
            let mut data = varmap.data().lock().expect("varmap lock");
            data.retain(|name, _| !name.starts_with("lm_head."));
            let h = config.hidden_size;
            data.insert("score.weight".into(), Var::zeros((1, h), dtype, device)?);
            data.insert("score.bias".into(), Var::zeros(1, dtype, device)?);
        }
        let arch = if config.model_type == "qwen2" {
            "Qwen2ForTokenClassification"
        } else {
            "LlamaForTokenClassification"
        };
        raw_config["architectures"] = serde_json::json!([arch]);
        raw_config["num_labels"] = serde_json::json!(1);
        let (model, score) = build(&dir, &config, &varmap, device, dtype)?;
        Ok(Critic {
            dir,
            config,
            raw_config,
            varmap,
            model,
            score,
        })
    }

    /// The value of each position's state, aligned with
    /// [`Model::token_logprobs`]: `batch.ids` [B, T] -> [B, T-1], entry j
    /// the value after tokens 0..=j (before token j+1 is chosen).
    pub fn values(&self, batch: &Batch) -> Result<Tensor> {
        let mask = self.model.batch_mask(batch)?;
        let x = self
            .model
            .forward_trunk(&batch.ids, &batch.positions, &mask, None, false)?;
        self.value_head(&x)
    }

    /// The value head on the last layer's output `x` [b, T, H]: final
    /// norm, then the score of positions 0..T-1: [b, T-1] (f32).
    pub fn value_head(&self, x: &Tensor) -> Result<Tensor> {
        let t = x.dim(1)?;
        let hidden = self.model.final_norm(&x.i((.., ..t - 1, ..))?)?;
        Ok(self
            .score
            .forward(&hidden)?
            .squeeze(2)?
            .to_dtype(DType::F32)?)
    }

    /// The value head as a [`crate::checkpointing::Head`].
    pub fn head(&self) -> impl Fn(&Tensor, std::ops::Range<usize>) -> Result<Vec<Tensor>> + '_ {
        move |x: &Tensor, _rows| Ok(vec![self.value_head(x)?])
    }

    /// Write the critic as an HF-layout directory (atomically), with the
    /// tokenizer files of `side_files_from` and `extra` files.
    /// The caller's error type passes through unchanged.
    pub fn save_with<E: From<ModelError>>(
        &self,
        dir: impl AsRef<Path>,
        side_files_from: Option<&Path>,
        extra: &dyn Fn(&Path) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.prepare(dir, side_files_from, extra)?.commit()?;
        Ok(())
    }

    /// [`Critic::save_with`] up to the swap: see [`Checkpoint::prepare`](crate::Checkpoint::prepare).
    pub fn prepare<E: From<ModelError>>(
        &self,
        dir: impl AsRef<Path>,
        side_files_from: Option<&Path>,
        extra: &dyn Fn(&Path) -> std::result::Result<(), E>,
    ) -> std::result::Result<crate::checkpoint::Pending, E> {
        let from = side_files_from.unwrap_or(&self.dir);
        prepare_dir(dir.as_ref(), &self.varmap, &self.raw_config, from, extra)
    }
}
