//! HF-layout checkpoints: config.json, model.safetensors (or a sharded
//! index), tokenizer.json, tokenizer_config.json. Loaded into trainable
//! variables; saved with [`durable::DirWriter`]: written beside the
//! destination, flushed, then swapped in atomically, and only over a
//! folder that holds nothing but checkpoint files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::{Config, Model, ModelError, Result};

/// Files copied along with the weights when a checkpoint is saved.
pub const SIDE_FILES: [&str; 5] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
];

/// The optimizer state a training stage saves beside the weights.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Whether the folder `dir` may be replaced by a checkpoint writer: it is
/// empty or holds only the files a checkpoint has, each a regular file
/// whose content is what its name says: config.json and the other JSON
/// files parse as JSON, each `.safetensors` file has a safetensors header.
/// Anything else (a run folder, a user's notes, a git checkout, a folder
/// named like a weights file) is refused, naming what was found.
pub fn replaceable(dir: &Path) -> std::result::Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    let mut foreign = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let named_ours = name == "config.json"
            || name == "model.safetensors"
            || name == "model.safetensors.index.json"
            || (name.starts_with("model-") && name.ends_with(".safetensors"))
            || name == OPTIMIZER_FILE
            || SIDE_FILES.contains(&name.as_ref());
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !named_ours {
            foreign.push(format!("`{name}`"));
        } else if !is_file {
            foreign.push(format!("`{name}` (not a regular file)"));
        } else if !content_matches(&entry.path(), &name) {
            foreign.push(format!("`{name}` (not what its name says)"));
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let more = foreign.len().saturating_sub(3);
    foreign.truncate(3);
    Err(format!(
        "not a checkpoint folder (it holds {}{}); refusing to replace it: choose a new or empty folder",
        foreign.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    ))
}

/// Whether the file at `path` is what a checkpoint file called `name` is:
/// a safetensors header (an 8-byte length, then that many bytes of a JSON
/// object), or JSON, or (the chat template) any text.
fn content_matches(path: &Path, name: &str) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if name.ends_with(".safetensors") {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut n = [0u8; 8];
        if f.read_exact(&mut n).is_err() {
            return false;
        }
        let n = u64::from_le_bytes(n);
        // safetensors caps its header at 100 MB.
        if n == 0 || n > 100_000_000 || n > len.saturating_sub(8) {
            return false;
        }
        let mut header = vec![0u8; n as usize];
        return f.read_exact(&mut header).is_ok()
            && serde_json::from_slice::<serde_json::Value>(&header).is_ok_and(|v| v.is_object());
    }
    if name.ends_with(".json") {
        let mut text = Vec::new();
        return f.read_to_end(&mut text).is_ok()
            && serde_json::from_slice::<serde_json::Value>(&text).is_ok();
    }
    let mut text = Vec::new();
    f.read_to_end(&mut text).is_ok() && std::str::from_utf8(&text).is_ok()
}

/// An error, before anything is allocated, when a model of `cfg`'s shape
/// cannot fit on the CPU: its weights and RoPE tables
/// ([`Config::model_bytes`]) need more than the memory available.
/// Every way of making a model (load, random, critic) asks it first.
pub fn check_fits(cfg: &Config, dtype: DType, device: &Device) -> Result<()> {
    if !device.is_cpu() {
        return Ok(());
    }
    let need = cfg.model_bytes(dtype.size_in_bytes());
    match dist::available_memory() {
        Some(have) if need > have => Err(ModelError::Invalid(format!(
            "config: a model of this shape needs {:.3e} GB ({:.3e} parameters in {dtype:?}, and RoPE tables for max_position_embeddings {}), more than the memory available ({:.1} GB)",
            need / 1e9,
            cfg.param_count(),
            cfg.max_position_embeddings,
            have / 1e9
        ))),
        _ => Ok(()),
    }
}

/// An error unless a checkpoint can be written at `dir`: it does not exist
/// yet, or it is a folder [`replaceable`] accepts. Stages call it before
/// any work, so a bad output path costs nothing.
pub fn check_output(dir: &Path) -> Result<()> {
    durable::may_replace(dir, replaceable).map_err(from_durable)
}

/// A loaded checkpoint: the model, its variables (for training and
/// saving), its config as written, and where it came from.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: Config,
    pub raw_config: serde_json::Value,
    pub varmap: VarMap,
    pub model: Model,
}

pub(crate) fn err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Read config.json.
pub fn read_config(dir: &Path) -> Result<(Config, serde_json::Value)> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
    let raw: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(&path, e.to_string()))?;
    let cfg: Config = serde_json::from_value(raw.clone()).map_err(|e| err(&path, e.to_string()))?;
    cfg.validate().map_err(|e| err(&path, e))?;
    Ok((cfg, raw))
}

/// The weight files: model.safetensors, or the shards a
/// model.safetensors.index.json names.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index)
        .map_err(|_| err(dir, "no model.safetensors or model.safetensors.index.json"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(&index, e.to_string()))?;
    let mut files: Vec<String> = v["weight_map"]
        .as_object()
        .ok_or_else(|| err(&index, "no weight_map"))?
        .values()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    files.sort();
    files.dedup();
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

impl Checkpoint {
    /// Load `dir` onto `device` as `dtype`.
    pub fn load(dir: impl AsRef<Path>, device: &Device, dtype: DType) -> Result<Checkpoint> {
        let dir = dir.as_ref().to_path_buf();
        let (config, raw_config) = read_config(&dir)?;
        check_fits(&config, dtype, device)?;
        let varmap = load_varmap(&dir, device, dtype)?;
        let model = build_complete(&dir, &varmap, dtype, device, |vb| Model::new(&config, vb))?;
        Ok(Checkpoint {
            dir,
            config,
            raw_config,
            varmap,
            model,
        })
    }

    /// A new model with random weights (tests, critics' heads).
    pub fn random(config: Config, device: &Device, dtype: DType) -> Result<Checkpoint> {
        config
            .validate()
            .map_err(|e| ModelError::Invalid(format!("config: {e}")))?;
        check_fits(&config, dtype, device)?;
        let raw_config = serde_json::to_value(RawConfig(&config)).expect("config serialises");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, device);
        let model = Model::new(&config, vb)?;
        Ok(Checkpoint {
            dir: PathBuf::new(),
            config,
            raw_config,
            varmap,
            model,
        })
    }

    /// HF's initialisation, deterministic: every weight normal with standard
    /// deviation `std` from a generator seeded with `seed`, in name order;
    /// norms at one, biases at zero.
    pub fn init_weights(&self, seed: u64, std: f32) -> Result<()> {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = rand_distr::Normal::new(0.0f32, std)
            .map_err(|e| crate::ModelError::Invalid(format!("initializer std {std}: {e}")))?;
        let vars = self.varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let var = &vars[name];
            let n = var.as_tensor().elem_count();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| normal.sample(&mut rng)).collect()
            };
            let t = candle_core::Tensor::from_vec(values, var.as_tensor().shape(), var.device())?;
            var.set(&t.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }

    /// Write an HF-layout directory at `dir` (replacing it) with the
    /// current weights, config.json as loaded, and the tokenizer files of
    /// `side_files_from` (default: where it was loaded from).
    pub fn save(&self, dir: impl AsRef<Path>, side_files_from: Option<&Path>) -> Result<()> {
        self.save_with(dir, side_files_from, &|_| Ok::<(), ModelError>(()))
    }

    /// [`Checkpoint::save`], with `extra(tmp_dir)` writing more files
    /// (optimizer state) into the directory before it is renamed in.
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

    /// Write everything [`Checkpoint::save_with`] writes, flushed to disk,
    /// but not yet swapped in: [`Pending::commit`] does that, so a stage
    /// can commit other outputs between the two.
    pub fn prepare<E: From<ModelError>>(
        &self,
        dir: impl AsRef<Path>,
        side_files_from: Option<&Path>,
        extra: &dyn Fn(&Path) -> std::result::Result<(), E>,
    ) -> std::result::Result<Pending, E> {
        let from = side_files_from.unwrap_or(&self.dir);
        prepare_dir(dir.as_ref(), &self.varmap, &self.raw_config, from, extra)
    }
}

/// A checkpoint written and flushed beside its destination.
pub struct Pending {
    writer: durable::DirWriter,
}

impl Pending {
    /// Swap it in atomically: the destination holds the previous
    /// checkpoint or this one at every instant.
    pub fn commit(self) -> Result<PathBuf> {
        self.writer.commit().map_err(from_durable)
    }
}

pub(crate) fn from_durable(e: durable::Error) -> ModelError {
    match e {
        durable::Error::Io { path, source } => err(&path, source.to_string()),
        durable::Error::Refused { path, reason } => err(&path, reason),
    }
}

/// Elements per pass of [`check_finite`] (64 MB of f32).
const CHECK_CHUNK: usize = 1 << 24;

/// An error unless every float variable of `varmap` is finite: a
/// checkpoint with NaN or infinite weights is never written.
pub fn check_finite(varmap: &VarMap, dir: &Path) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let t = data[name].as_tensor();
        if !t.dtype().is_float() {
            continue;
        }
        // 0 * x is 0 for a finite x and NaN for NaN or an infinity; in
        // chunks, so the check never holds a second copy of a large tensor.
        let flat = t.flatten_all()?;
        let n = flat.elem_count();
        let mut s = 0f32;
        for start in (0..n).step_by(CHECK_CHUNK) {
            let len = CHECK_CHUNK.min(n - start);
            s += (flat.narrow(0, start, len)? * 0.0)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()?;
        }
        if s != 0.0 {
            return Err(err(
                dir,
                format!("not written: weight `{name}` has NaN or infinite values (a learning rate or loss out of range?)"),
            ));
        }
    }
    Ok(())
}

/// Every tensor of the safetensors files of `dir`, as trainable variables.
pub(crate) fn load_varmap(dir: &Path, device: &Device, dtype: DType) -> Result<VarMap> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for f in weight_files(dir)? {
        let t = candle_core::safetensors::load(&f, device).map_err(|e| err(&f, e.to_string()))?;
        tensors.extend(t);
    }
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().expect("varmap lock");
        for (name, t) in tensors {
            data.insert(name, Var::from_tensor(&t.to_dtype(dtype)?)?);
        }
    }
    Ok(varmap)
}

/// Build a module over `varmap`; a tensor the module needs that the files
/// lack is an error (the builder would otherwise create it).
pub(crate) fn build_complete<M>(
    dir: &Path,
    varmap: &VarMap,
    dtype: DType,
    device: &Device,
    build: impl FnOnce(VarBuilder) -> Result<M>,
) -> Result<M> {
    let n_loaded = varmap.all_vars().len();
    let vb = VarBuilder::from_varmap(varmap, dtype, device);
    let m = build(vb).map_err(|e| err(dir, format!("weights do not match config.json: {e}")))?;
    let missing = varmap.all_vars().len() - n_loaded;
    if missing > 0 {
        return Err(err(
            dir,
            format!("{missing} weight tensors required by config.json are missing"),
        ));
    }
    Ok(m)
}

/// Write `varmap` and `raw_config` as an HF-layout directory beside `dir`
/// (flushed, not yet swapped in), after checking every weight is finite
/// and that `dir`, if it exists, is a checkpoint folder.
pub(crate) fn prepare_dir<E: From<ModelError>>(
    dir: &Path,
    varmap: &VarMap,
    raw_config: &serde_json::Value,
    side_files_from: &Path,
    extra: &dyn Fn(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<Pending, E> {
    check_finite(varmap, dir)?;
    let writer = durable::DirWriter::begin(dir, replaceable).map_err(from_durable)?;
    let tmp = writer.path().to_path_buf();
    let files = || -> Result<()> {
        save_weights(
            varmap,
            saved_dtype(raw_config),
            &tmp.join("model.safetensors"),
        )?;
        let cfg = serde_json::to_string_pretty(raw_config).expect("json");
        std::fs::write(tmp.join("config.json"), cfg).map_err(|e| err(dir, e.to_string()))?;
        for f in SIDE_FILES {
            let src = side_files_from.join(f);
            if src.exists() {
                std::fs::copy(&src, tmp.join(f)).map_err(|e| err(&src, e.to_string()))?;
            }
        }
        Ok(())
    };
    files()
        .map_err(E::from)
        .and_then(|()| extra(&tmp))
        .and_then(|()| same_permissions(&tmp).map_err(E::from))?;
    Ok(Pending { writer })
}

/// The dtype a checkpoint's weights are written in: its config.json's
/// `torch_dtype` (bfloat16, float16 or float32; float32 when absent), so a
/// checkpoint is written in the dtype it came in whatever a stage
/// computed in.
pub fn saved_dtype(raw_config: &serde_json::Value) -> DType {
    match raw_config["torch_dtype"].as_str() {
        Some("bfloat16") => DType::BF16,
        Some("float16") => DType::F16,
        _ => DType::F32,
    }
}

/// A tensor written as `dtype`, converted only when the writer asks for
/// its bytes: one tensor at a time, never a second copy of the model.
struct Converted<'a> {
    tensor: &'a Tensor,
    dtype: DType,
}

impl safetensors::View for Converted<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype.into()
    }
    fn shape(&self) -> &[usize] {
        self.tensor.dims()
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let t = self
            .tensor
            .to_dtype(self.dtype)
            .expect("a float tensor converts to a float dtype");
        std::borrow::Cow::Owned(safetensors::View::data(&t).into_owned())
    }
    fn data_len(&self) -> usize {
        self.tensor.elem_count() * self.dtype.size_in_bytes()
    }
}

/// The safetensors header metadata of every checkpoint written here:
/// `{"format": "pt"}`, which some transformers versions require to load
/// a file as PyTorch weights.
pub fn pt_metadata() -> Option<std::collections::HashMap<String, String>> {
    Some([("format".to_string(), "pt".to_string())].into())
}

/// Write every variable of `varmap` to `path` as `dtype`, streamed.
fn save_weights(varmap: &VarMap, dtype: DType, path: &Path) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let views: Vec<(String, Converted)> = data
        .iter()
        .map(|(k, v)| {
            let t = v.as_tensor();
            let dtype = if t.dtype().is_float() {
                dtype
            } else {
                t.dtype()
            };
            (k.clone(), Converted { tensor: t, dtype })
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, pt_metadata(), path)
        .map_err(|e| err(path, e.to_string()))
}

/// Give every file of the checkpoint being written in `tmp` the
/// permissions of its config.json (written as any file, under the umask):
/// the safetensors writer creates its files readable by the owner only.
fn same_permissions(tmp: &Path) -> Result<()> {
    let cfg = tmp.join("config.json");
    let perm = std::fs::metadata(&cfg)
        .map_err(|e| err(&cfg, e.to_string()))?
        .permissions();
    let entries = std::fs::read_dir(tmp).map_err(|e| err(tmp, e.to_string()))?;
    for entry in entries {
        let path = entry.map_err(|e| err(tmp, e.to_string()))?.path();
        std::fs::set_permissions(&path, perm.clone()).map_err(|e| err(&path, e.to_string()))?;
    }
    Ok(())
}

/// The config fields we know, written back as config.json for a model
/// made from scratch.
struct RawConfig<'a>(&'a Config);

impl serde::Serialize for RawConfig<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let c = self.0;
        let arch = if c.model_type == "qwen2" {
            "Qwen2ForCausalLM"
        } else {
            "LlamaForCausalLM"
        };
        serde_json::json!({
            "architectures": [arch],
            "model_type": c.model_type,
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.num_kv_heads(),
            "head_dim": c.head_dim(),
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "max_position_embeddings": c.max_position_embeddings,
            "tie_word_embeddings": c.tie_word_embeddings,
            "attention_bias": c.attention_bias.unwrap_or(false),
            "hidden_act": "silu",
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id,
            "torch_dtype": "float32",
        })
        .serialize(s)
    }
}
