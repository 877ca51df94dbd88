//! The tokenizer of a checkpoint directory (tokenizer.json through the
//! tokenizers crate) and its end-of-sequence tokens.

use std::path::Path;

use crate::{ModelError, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Ids that end a response: the eos of tokenizer_config.json and
    /// config.json.
    pub eos_ids: Vec<u32>,
    /// The id used to pad batches.
    pub pad_id: u32,
}

impl Tokenizer {
    pub fn load(dir: &Path) -> Result<Tokenizer> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        let mut eos_ids = Vec::new();
        if let Ok((cfg, _)) = crate::checkpoint::read_config(dir) {
            eos_ids.extend(cfg.eos_ids());
        }
        let tc = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok();
        let tc: serde_json::Value = tc
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let token_id = |k: &str| -> Option<u32> {
            let s = match &tc[k] {
                serde_json::Value::String(s) => Some(s.clone()),
                v => v["content"].as_str().map(str::to_string),
            }?;
            inner.token_to_id(&s)
        };
        if let Some(e) = token_id("eos_token") {
            if !eos_ids.contains(&e) {
                eos_ids.push(e);
            }
        }
        let pad_id = token_id("pad_token")
            .or(eos_ids.first().copied())
            .unwrap_or(0);
        Ok(Tokenizer {
            inner,
            eos_ids,
            pad_id,
        })
    }

    /// Token ids of `text`, adding no special tokens (prompts are already
    /// templated).
    /// The longest vocabulary entry, in bytes: a text of more than
    /// `n * max_token_bytes()` bytes cannot be `n` tokens or fewer (a bound
    /// checked before tokenising, which costs memory in proportion).
    pub fn max_token_bytes(&self) -> usize {
        self.inner
            .get_vocab(true)
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, without special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// An error when a side file of the checkpoint at `dir` that a writer
/// copies into its output would make that output unloadable: a
/// tokenizer.json the tokenizer cannot load, or a JSON side file that is
/// not JSON. A trainer asks it before any work.
pub fn check_side_files(dir: &Path) -> Result<()> {
    if dir.join("tokenizer.json").exists() {
        Tokenizer::load(dir)?;
    }
    for name in crate::checkpoint::SIDE_FILES
        .iter()
        .filter(|n| n.ends_with(".json"))
    {
        let path = dir.join(name);
        if let Ok(text) = std::fs::read(&path) {
            serde_json::from_slice::<serde_json::Value>(&text).map_err(|e| {
                crate::checkpoint::err(
                    &path,
                    format!("not JSON ({e}); a checkpoint written with it would not load"),
                )
            })?;
        }
    }
    Ok(())
}
