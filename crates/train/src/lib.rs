//! Training machinery shared by the PPO step and the SFT step (one copy):
//!
//! - [`TrainError`]: the one error type of both trainers;
//! - [`Params`]: a model's variables in name order;
//! - [`GradAccum`]: gradients summed over micro-batches (each backward
//!   weighted so the micro-batches add up to the batch), their global norm;
//! - [`AdamW`]: a fused AdamW over flat buffers (one pass per tensor,
//!   parallel), with its state saved beside a checkpoint so a run resumes
//!   exactly;
//! - [`Trainable`]: a model's parameters with their optimizer: clip and
//!   step, and save the state into a checkpoint being written;
//! - [`epoch_order`]: the seeded shuffle of a batch for an epoch;
//! - [`LrSchedule`]: constant, or warmup then cosine or linear decay.

pub mod memory;

use std::path::Path;

use candle_core::{backprop::GradStore, DType, Tensor, Var};
use candle_nn::VarMap;
use rayon::prelude::*;

/// Everything a training step can fail with; sources are kept.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Optimizer state that cannot be read or written.
    #[error("{path}: {message}")]
    State { path: String, message: String },
    /// A loss or gradient norm that is NaN or infinite.
    #[error("{0}")]
    NonFinite(String),
    /// Options or inputs that cannot be trained on.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// The file beside a checkpoint's weights that holds its optimizer state.
pub use model::checkpoint::OPTIMIZER_FILE;

/// A model's trainable variables, sorted by name.
#[derive(Clone)]
pub struct Params {
    pub names: Vec<String>,
    pub vars: Vec<Var>,
}

impl Params {
    pub fn from_varmap(varmap: &VarMap) -> Params {
        let data = varmap.data().lock().expect("varmap lock");
        let mut pairs: Vec<(String, Var)> =
            data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, vars) = pairs.into_iter().unzip();
        Params { names, vars }
    }

    /// Number of scalar parameters.
    pub fn count(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

const CHUNK: usize = 1 << 15;

/// Gradients summed over micro-batches, one flat buffer per parameter
/// (None until a gradient arrives: such a parameter is not updated).
///
/// With NCCL (parameters on a GPU, several ranks) the sums stay on the
/// GPU as f32 tensors until [`Trainable::clip_and_step`] reduces them over
/// the ranks there and brings them to `grads` once per step.
pub struct GradAccum {
    pub grads: Vec<Option<Vec<f32>>>,
    on_device: Option<Vec<Option<Tensor>>>,
}

impl GradAccum {
    pub fn new(params: &Params) -> GradAccum {
        GradAccum {
            grads: vec![None; params.vars.len()],
            on_device: None,
        }
    }

    /// Whether parameter `i` has a gradient on this rank.
    fn has(&self, i: usize) -> bool {
        self.grads[i].is_some() || self.on_device.as_ref().is_some_and(|d| d[i].is_some())
    }

    /// Backpropagate `loss * weight` (a micro-batch's share of its batch,
    /// see `rl::micro_weight`) and add its gradients.
    pub fn backward(&mut self, params: &Params, loss: &Tensor, weight: f64) -> Result<()> {
        self.add(params, &(loss * weight)?.backward()?)
    }

    /// Add the gradients of one backward pass.
    pub fn add(&mut self, params: &Params, store: &GradStore) -> Result<()> {
        if let Some(on_device) = &mut self.on_device {
            for (slot, var) in on_device.iter_mut().zip(&params.vars) {
                let Some(g) = store.get(var.as_tensor()) else {
                    continue;
                };
                let g = g.to_dtype(DType::F32)?;
                // A buffer of its own (the collectives work in place).
                *slot = Some(match slot.take() {
                    None => g.copy()?,
                    Some(acc) => (acc + g)?,
                });
            }
            return Ok(());
        }
        for (slot, var) in self.grads.iter_mut().zip(&params.vars) {
            let Some(g) = store.get(var.as_tensor()) else {
                continue;
            };
            let g = flat(g)?;
            match slot {
                None => *slot = Some(g),
                Some(acc) => acc
                    .par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b)),
            }
        }
        Ok(())
    }

    /// Global L2 norm over every gradient.
    pub fn norm(&self) -> f64 {
        self.grads
            .iter()
            .flatten()
            .map(|g| {
                g.par_chunks(CHUNK)
                    .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
                    .sum::<f64>()
            })
            .sum::<f64>()
            .sqrt()
    }
}

/// The factor that brings a gradient of norm `norm` down to `max_norm`
/// (1 when it is already within; `max_norm` <= 0 disables clipping).
pub fn clip_coef(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

/// AdamW's (beta1, beta2), as a flag value `B1,B2` (e.g. `0.9,0.95`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Betas(pub f64, pub f64);

impl std::str::FromStr for Betas {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Betas, String> {
        let bad = || format!("`{s}`: betas are two numbers in [0, 1) as B1,B2, e.g. 0.9,0.95");
        let (a, b) = s.split_once(',').ok_or_else(bad)?;
        let parse = |x: &str| -> std::result::Result<f64, String> {
            let v: f64 = x.trim().parse().map_err(|_| bad())?;
            if (0.0..1.0).contains(&v) {
                Ok(v)
            } else {
                Err(bad())
            }
        };
        Ok(Betas(parse(a)?, parse(b)?))
    }
}

impl std::fmt::Display for Betas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.0, self.1)
    }
}

/// AdamW's hyperparameters (PyTorch's defaults but the learning rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW (decoupled weight decay, bias-corrected moments), as
/// torch.optim.AdamW, over flat buffers.
pub struct AdamW {
    pub cfg: AdamWConfig,
    /// Completed optimizer steps (bias correction uses it).
    pub step: u64,
    /// Values a run carries from step to step with the optimizer state
    /// (the adaptive KL coefficient), saved as `carried.NAME` (f64).
    pub carried: std::collections::BTreeMap<String, f64>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamW {
    pub fn new(params: &Params, cfg: AdamWConfig) -> AdamW {
        AdamW {
            cfg,
            step: 0,
            carried: Default::default(),
            m: vec![Vec::new(); params.vars.len()],
            v: vec![Vec::new(); params.vars.len()],
        }
    }

    /// One update with learning rate `lr`, the accumulated gradients
    /// multiplied by `grad_scale` (the clipping factor). Parameters without
    /// a gradient are left alone.
    pub fn step(
        &mut self,
        params: &Params,
        grads: &GradAccum,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.step += 1;
        let c = self.cfg;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let decay = (1.0 - lr * c.weight_decay) as f32;
        let gs = grad_scale as f32;
        for (i, var) in params.vars.iter().enumerate() {
            let Some(g) = &grads.grads[i] else { continue };
            let mut p = flat(var.as_tensor())?;
            let n = p.len();
            if self.m[i].len() != n {
                self.m[i] = vec![0.0; n];
                self.v[i] = vec![0.0; n];
            }
            p.par_chunks_mut(CHUNK)
                .zip(self.m[i].par_chunks_mut(CHUNK))
                .zip(self.v[i].par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((p, m), v), g)| {
                    for j in 0..p.len() {
                        let gj = g[j] * gs;
                        m[j] = b1 * m[j] + (1.0 - b1) * gj;
                        v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                        let denom = v[j].sqrt() / bc2_sqrt + eps;
                        p[j] = p[j] * decay - step_size * m[j] / denom;
                    }
                });
            let t = var.as_tensor();
            var.set(&Tensor::from_vec(p, t.shape(), t.device())?.to_dtype(t.dtype())?)?;
        }
        Ok(())
    }

    /// Bytes of moments this optimizer holds (of the parameters it has
    /// stepped: under `--shard-optimizer`, this rank's share).
    pub fn state_bytes(&self) -> usize {
        self.m.iter().chain(&self.v).map(|x| x.len() * 4).sum()
    }

    /// Write the moments and step count to `path` (safetensors), streamed
    /// from the optimizer's own buffers (no second copy of the state).
    pub fn save(&self, params: &Params, path: &Path) -> Result<()> {
        let step = [self.step as i64];
        let mut views: Vec<(String, Flat)> = vec![("step".into(), Flat::i64(&step))];
        let carried: Vec<(String, [f64; 1])> = self
            .carried
            .iter()
            .map(|(k, v)| (format!("carried.{k}"), [*v]))
            .collect();
        for (name, v) in &carried {
            views.push((name.clone(), Flat::f64(v)));
        }
        for (i, name) in params.names.iter().enumerate() {
            if self.m[i].is_empty() {
                continue;
            }
            views.push((format!("m.{name}"), Flat::f32(&self.m[i])));
            views.push((format!("v.{name}"), Flat::f32(&self.v[i])));
        }
        safetensors::tensor::serialize_to_file(views, None, path).map_err(|e| TrainError::State {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The state saved at `path` for `params`, read tensor by tensor into
    /// the optimizer's buffers.
    pub fn load(params: &Params, cfg: AdamWConfig, path: &Path) -> Result<AdamW> {
        AdamW::load_owned(params, cfg, &[path.to_path_buf()], &|_| true)
    }

    /// The state of the parameters `owned(i)` accepts, from whichever of
    /// `paths` holds it (the first holds the step count): a checkpoint's
    /// optimizer state, one file, or one per rank of the job that wrote it
    /// with --shard-optimizer.
    pub fn load_owned(
        params: &Params,
        cfg: AdamWConfig,
        paths: &[std::path::PathBuf],
        owned: &dyn Fn(usize) -> bool,
    ) -> Result<AdamW> {
        let mut opt = AdamW::load_file(params, cfg, &paths[0], owned)?;
        for p in &paths[1..] {
            let more = AdamW::load_file(params, cfg, p, &|i| owned(i) && opt.m[i].is_empty())?;
            for (i, (m, v)) in more.m.into_iter().zip(more.v).enumerate() {
                if !m.is_empty() {
                    opt.m[i] = m;
                    opt.v[i] = v;
                }
            }
        }
        Ok(opt)
    }

    fn load_file(
        params: &Params,
        cfg: AdamWConfig,
        path: &Path,
        owned: &dyn Fn(usize) -> bool,
    ) -> Result<AdamW> {
        let bad = |message: String| TrainError::State {
            path: path.display().to_string(),
            message,
        };
        let mut file = StateFile::open(path).map_err(|e| bad(e.to_string()))?;
        let step = file
            .read_i64("step")
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("no `step` tensor".into()))?;
        let mut opt = AdamW::new(params, cfg);
        opt.step = step as u64;
        let names: Vec<String> = file
            .header
            .keys()
            .filter(|k| k.starts_with("carried."))
            .cloned()
            .collect();
        for name in names {
            let v = file.read_f64(&name).map_err(|e| bad(e.to_string()))?;
            if let Some(v) = v {
                opt.carried.insert(name["carried.".len()..].to_string(), v);
            }
        }
        for (i, name) in params.names.iter().enumerate() {
            if !owned(i) {
                continue;
            }
            let n = params.vars[i].elem_count();
            let m = file
                .read_f32(&format!("m.{name}"))
                .map_err(|e| bad(e.to_string()))?;
            let v = file
                .read_f32(&format!("v.{name}"))
                .map_err(|e| bad(e.to_string()))?;
            if let (Some(m), Some(v)) = (m, v) {
                if m.len() != n || v.len() != n {
                    return Err(bad(format!(
                        "state of `{name}` has {} values, the parameter {n}",
                        m.len()
                    )));
                }
                opt.m[i] = m;
                opt.v[i] = v;
            }
        }
        Ok(opt)
    }

    /// The state beside the checkpoint `dir` if it has one, else new.
    pub fn resume_or_new(params: &Params, cfg: AdamWConfig, dir: &Path) -> Result<AdamW> {
        AdamW::resume_owned(params, cfg, dir, &|_| true)
    }

    /// [`AdamW::resume_or_new`] for the parameters `owned(i)` accepts.
    fn resume_owned(
        params: &Params,
        cfg: AdamWConfig,
        dir: &Path,
        owned: &dyn Fn(usize) -> bool,
    ) -> Result<AdamW> {
        let path = dir.join(OPTIMIZER_FILE);
        if !path.exists() {
            return Ok(AdamW::new(params, cfg));
        }
        let mut paths = vec![path];
        paths.extend(rank_state_files(dir).map_err(|e| TrainError::State {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?);
        AdamW::load_owned(params, cfg, &paths, owned)
    }
}

/// The optimizer state files the other ranks of a --shard-optimizer job
/// wrote into a checkpoint (`optimizer.rank-NNNNN.safetensors`), in name
/// order.
fn rank_state_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("optimizer.rank-") && name.ends_with(".safetensors") {
            v.push(dir.join(name));
        }
    }
    v.sort();
    Ok(v)
}

/// The file rank `rank` (> 0) of a --shard-optimizer job writes its share
/// of the optimizer state to; rank 0 writes [`OPTIMIZER_FILE`].
pub fn rank_state_file(rank: usize) -> String {
    format!("optimizer.rank-{rank:05}.safetensors")
}

/// A flat buffer written as a 1-d safetensors tensor, borrowed.
struct Flat<'a> {
    bytes: &'a [u8],
    dtype: safetensors::Dtype,
    shape: [usize; 1],
}

impl Flat<'_> {
    fn f32(x: &[f32]) -> Flat<'_> {
        Flat {
            bytes: bytemuck::cast_slice(x),
            dtype: safetensors::Dtype::F32,
            shape: [x.len()],
        }
    }
    fn f64(x: &[f64]) -> Flat<'_> {
        Flat {
            bytes: bytemuck::cast_slice(x),
            dtype: safetensors::Dtype::F64,
            shape: [x.len()],
        }
    }
    fn i64(x: &[i64]) -> Flat<'_> {
        Flat {
            bytes: bytemuck::cast_slice(x),
            dtype: safetensors::Dtype::I64,
            shape: [x.len()],
        }
    }
}

impl safetensors::View for Flat<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A safetensors file read one named tensor at a time (header parsed
/// once, each tensor's bytes read from its offsets).
struct StateFile {
    file: std::fs::File,
    data_start: u64,
    header: serde_json::Map<String, serde_json::Value>,
}

impl StateFile {
    fn open(path: &Path) -> std::io::Result<StateFile> {
        use std::io::Read;
        let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut file = std::fs::File::open(path)?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)?;
        let n = u64::from_le_bytes(len);
        if n > 100 << 20 {
            return Err(invalid("not a safetensors file (header too long)"));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)?;
        let header: serde_json::Value =
            serde_json::from_slice(&header).map_err(|e| invalid(&e.to_string()))?;
        let header = header
            .as_object()
            .cloned()
            .ok_or_else(|| invalid("the header is not a JSON object"))?;
        Ok(StateFile {
            file,
            data_start: 8 + n,
            header,
        })
    }

    /// The bytes of tensor `name` of dtype `dtype` (None when absent).
    fn bytes(&mut self, name: &str, dtype: &str, size: usize) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::{Read, Seek, SeekFrom};
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let Some(entry) = self.header.get(name) else {
            return Ok(None);
        };
        if entry["dtype"].as_str() != Some(dtype) {
            return Err(invalid(format!("`{name}` is not {dtype}")));
        }
        let offsets = entry["data_offsets"]
            .as_array()
            .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)))
            .ok_or_else(|| invalid(format!("`{name}` has no data_offsets")))?;
        let len = offsets
            .1
            .checked_sub(offsets.0)
            .filter(|l| l % size as u64 == 0);
        let len = len.ok_or_else(|| invalid(format!("`{name}` has bad data_offsets")))?;
        self.file
            .seek(SeekFrom::Start(self.data_start + offsets.0))?;
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact(&mut buf)?;
        Ok(Some(buf))
    }

    fn read_f32(&mut self, name: &str) -> std::io::Result<Option<Vec<f32>>> {
        Ok(self.bytes(name, "F32", 4)?.map(|b| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        }))
    }

    fn read_f64(&mut self, name: &str) -> std::io::Result<Option<f64>> {
        Ok(self.bytes(name, "F64", 8)?.and_then(|b| {
            b.get(..8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        }))
    }

    fn read_i64(&mut self, name: &str) -> std::io::Result<Option<i64>> {
        Ok(self.bytes(name, "I64", 8)?.and_then(|b| {
            b.get(..8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        }))
    }
}

/// A model's parameters and their optimizer, on every rank of the job
/// ([`dist::world`]; one process: the identity). Gradients are summed over
/// the ranks before clipping, so every rank takes the same step.
///
/// With the optimizer state sharded (ZeRO stage 1, `--shard-optimizer`),
/// each parameter has an owner rank that alone keeps its AdamW moments:
/// the gradients are reduced to their owners (a reduce-scatter over whole
/// tensors), each owner updates its parameters, and the new weights are
/// broadcast from their owners (an all-gather).
pub struct Trainable {
    pub params: Params,
    pub opt: AdamW,
    world: dist::World,
    /// each parameter's owner rank, when the state is sharded
    owners: Option<Vec<usize>>,
    /// the ranks' NCCL communicator, when the parameters are on a GPU
    /// (the `nccl` feature, several ranks): the collectives run there
    nccl: Option<std::rc::Rc<dist::nccl::DeviceGroup>>,
}

/// Owners for parameters of `sizes` elements over `ranks` ranks: the
/// largest first, each to the rank that holds the fewest elements so far
/// (ties to the lowest rank), so every rank keeps about 1/ranks of them.
pub fn owners(sizes: &[usize], ranks: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut load = vec![0usize; ranks.max(1)];
    let mut owner = vec![0; sizes.len()];
    for i in order {
        let r = (0..load.len())
            .min_by_key(|&r| (load[r], r))
            .expect("at least one rank");
        owner[i] = r;
        load[r] += sizes[i];
    }
    owner
}

impl Trainable {
    /// The variables of `varmap`, with the optimizer state saved in the
    /// checkpoint `resume_from` when it has one (else a new optimizer).
    pub fn new(varmap: &VarMap, cfg: AdamWConfig, resume_from: Option<&Path>) -> Result<Trainable> {
        Trainable::with_sharding(varmap, cfg, resume_from, false)
    }

    /// [`Trainable::new`]; with `shard_state` under an N-rank job, this
    /// rank keeps (and loads) the optimizer state of its parameters only.
    pub fn with_sharding(
        varmap: &VarMap,
        cfg: AdamWConfig,
        resume_from: Option<&Path>,
        shard_state: bool,
    ) -> Result<Trainable> {
        let params = Params::from_varmap(varmap);
        let world = dist::world();
        let owners = (shard_state && world.size() > 1).then(|| {
            let sizes: Vec<usize> = params.vars.iter().map(|v| v.elem_count()).collect();
            owners(&sizes, world.size())
        });
        let mine = |i: usize| owners.as_ref().is_none_or(|o| o[i] == world.rank());
        let opt = match resume_from {
            Some(dir) => AdamW::resume_owned(&params, cfg, dir, &mine)?,
            None => AdamW::new(&params, cfg),
        };
        let nccl = match params.vars.first() {
            Some(v) => dist::nccl::DeviceGroup::for_device(world, v.device())?,
            None => None,
        };
        Ok(Trainable {
            params,
            opt,
            world,
            owners,
            nccl,
        })
    }

    /// Whether this rank keeps only its share of the optimizer state.
    pub fn is_sharded(&self) -> bool {
        self.owners.is_some()
    }

    /// Bytes of optimizer state (AdamW's two moments) this rank keeps once
    /// every parameter it owns has been stepped, and the whole state's.
    pub fn state_bytes_planned(&self) -> (usize, usize) {
        let sizes = self.params.vars.iter().map(|v| v.elem_count() * 8);
        let all: usize = sizes.clone().sum();
        let mine = match &self.owners {
            None => all,
            Some(o) => sizes
                .enumerate()
                .filter(|(i, _)| o[*i] == self.world.rank())
                .map(|(_, b)| b)
                .sum(),
        };
        (mine, all)
    }

    /// A new gradient accumulator for these parameters.
    pub fn grads(&self) -> GradAccum {
        let mut g = GradAccum::new(&self.params);
        if self.nccl.is_some() {
            g.on_device = Some(vec![None; self.params.vars.len()]);
        }
        g
    }

    /// Sum the ranks' gradients, clip them to `max_norm` and take one step
    /// at `lr`; every rank ends with the same weights. Returns the norm
    /// before clipping; a non-finite norm is an error naming `what` (on
    /// every rank) and changes nothing. `grads` is consumed: afterwards it
    /// holds the summed gradients (of this rank's parameters only, when
    /// the state is sharded).
    pub fn clip_and_step(
        &mut self,
        grads: &mut GradAccum,
        lr: f64,
        max_norm: f64,
        what: &str,
    ) -> Result<f64> {
        let w = self.world;
        // The parameters some rank has a gradient for (a rank may have had
        // no micro-batch): the others join with zeros.
        let mut present: Vec<f64> = (0..grads.grads.len())
            .map(|i| grads.has(i) as u8 as f64)
            .collect();
        w.all_reduce_max_f64(&mut present);
        if let (Some(group), Some(on_device)) = (&self.nccl, grads.on_device.take()) {
            // On the GPUs: sum (or reduce to the owner) there, then one copy
            // of the result to the host for the optimizer.
            for (i, slot) in on_device.into_iter().enumerate() {
                if present[i] == 0.0 {
                    continue;
                }
                let var = &self.params.vars[i];
                let t = match slot {
                    Some(t) => t,
                    None => Tensor::zeros(var.shape(), DType::F32, var.device())?,
                };
                match &self.owners {
                    None => group.all_reduce_sum(&t)?,
                    Some(o) => {
                        group.reduce_sum(o[i], &t)?;
                        if o[i] != w.rank() {
                            continue;
                        }
                    }
                }
                grads.grads[i] = Some(flat(&t)?);
            }
        } else if w.size() > 1 {
            for (i, slot) in grads.grads.iter_mut().enumerate() {
                if present[i] > 0.0 && slot.is_none() {
                    *slot = Some(vec![0.0; self.params.vars[i].elem_count()]);
                }
            }
            for (i, slot) in grads.grads.iter_mut().enumerate() {
                let Some(g) = slot.as_mut() else { continue };
                match &self.owners {
                    None => w.all_reduce_sum_f32(g),
                    Some(o) => {
                        w.reduce_sum_f32(o[i], g);
                        if o[i] != w.rank() {
                            *slot = None;
                        }
                    }
                }
            }
        }
        let norm = match &self.owners {
            None => grads.norm(),
            Some(_) => {
                let mut sq = [grads.norm().powi(2)];
                w.all_reduce_sum_f64(&mut sq);
                sq[0].sqrt()
            }
        };
        ensure_finite(norm, &format!("the {what} gradient norm"))?;
        self.opt
            .step(&self.params, grads, lr, clip_coef(norm, max_norm))?;
        if let Some(o) = &self.owners {
            // Every rank gets the weights their owners computed.
            for (i, var) in self.params.vars.iter().enumerate() {
                if present[i] == 0.0 {
                    continue;
                }
                let t = var.as_tensor();
                if let Some(group) = &self.nccl {
                    group.broadcast(o[i], t)?;
                    continue;
                }
                let mut p = flat(t)?;
                w.broadcast_f32(o[i], &mut p);
                if o[i] != w.rank() {
                    var.set(&Tensor::from_vec(p, t.shape(), t.device())?.to_dtype(t.dtype())?)?;
                }
            }
        }
        Ok(norm)
    }

    /// Optimizer steps taken so far (resumed with the optimizer state):
    /// the position in a learning-rate schedule that spans several runs.
    pub fn steps_done(&self) -> u64 {
        self.opt.step
    }

    /// Write the optimizer state into `dir`, a checkpoint being written
    /// (for `Checkpoint::save_with`), on rank 0. With the state sharded
    /// this is collective: rank 0 writes its share and tells the others
    /// where `dir` is; each of them writes its share there
    /// ([`rank_state_file`]) in [`Trainable::save_state_elsewhere`], the
    /// call they make while rank 0 is in this one.
    pub fn save_state(&self, dir: &Path) -> Result<()> {
        self.opt.save(&self.params, &dir.join(OPTIMIZER_FILE))?;
        if self.is_sharded() {
            let mut where_ = dir.to_string_lossy().into_owned().into_bytes();
            self.world.broadcast_bytes(0, &mut where_);
            // Rank 0 commits the checkpoint only with every share in it.
            let mut failed = [0.0];
            self.world.all_reduce_max_f64(&mut failed);
            if failed[0] > 0.0 {
                return Err(TrainError::State {
                    path: dir.display().to_string(),
                    message: "another rank could not write its share of the optimizer state".into(),
                });
            }
        }
        Ok(())
    }

    /// A rank other than 0's part of [`Trainable::save_state`]: its share
    /// of a sharded state, into the directory rank 0 names. Nothing when
    /// the state is not sharded (rank 0 has all of it).
    pub fn save_state_elsewhere(&self) -> Result<()> {
        if !self.is_sharded() {
            return Ok(());
        }
        let mut dir = Vec::new();
        self.world.broadcast_bytes(0, &mut dir);
        let dir = std::path::PathBuf::from(String::from_utf8_lossy(&dir).into_owned());
        let result = self
            .opt
            .save(&self.params, &dir.join(rank_state_file(self.world.rank())));
        let mut failed = [result.is_err() as u8 as f64];
        self.world.all_reduce_max_f64(&mut failed);
        result
    }
}

/// The order of `n` examples in `epoch` of training round `round` (a PPO
/// step number; 0 for a single run), fixed by `seed`.
pub fn epoch_order(n: usize, seed: u64, round: u64, epoch: u64) -> Vec<usize> {
    rng::shuffled(n, seed ^ round.wrapping_mul(0x9E37_79B9) ^ epoch)
}

/// How the learning rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LrSchedule {
    /// The base rate throughout (after warmup).
    Constant,
    /// Warmup, then cosine decay to the minimum share of the base rate (`--min-lr-ratio`).
    Cosine,
    /// Warmup, then linear decay to the minimum share of the base rate (`--min-lr-ratio`).
    Linear,
}

impl LrSchedule {
    /// The rate of (0-based) step `step` of `total`, with `warmup` steps of
    /// linear warmup from base/warmup.
    pub fn lr(self, base: f64, step: u64, total: u64, warmup: u64, min_ratio: f64) -> f64 {
        if step < warmup {
            return base * (step + 1) as f64 / warmup as f64;
        }
        let span = total.saturating_sub(warmup).max(1) as f64;
        let progress = ((step - warmup) as f64 / span).min(1.0);
        let factor = match self {
            LrSchedule::Constant => return base,
            LrSchedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            LrSchedule::Linear => 1.0 - progress,
        };
        base * (min_ratio + (1.0 - min_ratio) * factor)
    }
}

/// An error unless `x` is finite (`what` names it in the message).
pub fn ensure_finite(x: f64, what: &str) -> Result<()> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFinite(format!(
            "{what} is {x}: step aborted, the previous checkpoint is left in place"
        )))
    }
}

#[cfg(test)]
mod betas_tests {
    use super::Betas;

    #[test]
    fn betas_parse_and_print_as_b1_b2() {
        assert_eq!("0.9,0.95".parse::<Betas>(), Ok(Betas(0.9, 0.95)));
        assert_eq!(Betas(0.9, 0.999).to_string(), "0.9,0.999");
        for bad in ["0.9", "1,0.9", "0.9,-0.1", "a,b", "nan,0.9", "0.9,0.95,0.9"] {
            assert!(bad.parse::<Betas>().is_err(), "{bad}");
        }
    }
}
