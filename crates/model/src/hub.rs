//! Models named the way every other tool names them: `org/name` or
//! `org/name@revision`, resolved through the standard Hugging Face cache
//! (`$HF_HOME/hub`, by default `~/.cache/huggingface/hub`) with the
//! `hf-hub` crate: a model already cached is used as it is; one that is
//! not is downloaded into the cache, unless `HF_HUB_OFFLINE` is set, when
//! the error names the id and the cache. A path that exists is always a
//! path.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::{ModelError, Result};

/// The files a checkpoint needs.
pub const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// Files used when present.
pub const OPTIONAL: [&str; 2] = ["tokenizer_config.json", "generation_config.json"];

/// `org/name[@revision]` when `spec` names no existing path and has that
/// shape (and its first component is not a local folder): (id, revision).
pub fn parse_id(spec: &Path) -> Option<(String, String)> {
    if spec.exists() {
        return None;
    }
    let s = spec.to_str()?;
    let (id, revision) = match s.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, rev),
        Some(_) => return None,
        None => (s, "main"),
    };
    let (org, name) = id.split_once('/')?;
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (part(org) && part(name) && !Path::new(org).exists())
        .then(|| (id.to_string(), revision.to_string()))
}

/// Whether `HF_HUB_OFFLINE` forbids downloads.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The checkpoint folder `spec` names: itself when it is not a Hub id,
/// else the cached snapshot of the id (downloaded first when missing and
/// allowed).
pub fn resolve(spec: &Path) -> Result<PathBuf> {
    let Some((id, revision)) = parse_id(spec) else {
        return Ok(spec.to_path_buf());
    };
    let cache = Cache::from_env();
    let repo = Repo::with_revision(id.clone(), RepoType::Model, revision.clone());
    if let Some(dir) = cached(&cache, &repo) {
        return Ok(dir);
    }
    let missing = || {
        format!(
            "`{}`: not a local folder, and not in the Hugging Face cache at {}",
            spec.display(),
            cache.path().display()
        )
    };
    if offline() {
        return Err(ModelError::Invalid(format!(
            "{} (HF_HUB_OFFLINE is set, so nothing is downloaded)",
            missing()
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
        .with_progress(false)
        .build()
        .map_err(|e| ModelError::Invalid(format!("{}; the Hub: {e}", missing())))?;
    let remote = api.repo(repo.clone());
    for f in REQUIRED {
        remote.get(f).map_err(|e| {
            ModelError::Invalid(format!("{}; downloading {f} failed: {e}", missing()))
        })?;
    }
    for f in OPTIONAL {
        let _ = remote.get(f);
    }
    cached(&cache, &repo).ok_or_else(|| ModelError::Invalid(missing()))
}

/// The snapshot folder of `repo` when it holds every required file: by
/// its ref (a branch or tag), or directly by a commit hash.
fn cached(cache: &Cache, repo: &Repo) -> Option<PathBuf> {
    let c = cache.repo(repo.clone());
    if let Some(config) = c.get("config.json") {
        let dir = config.parent()?.to_path_buf();
        return REQUIRED.iter().all(|f| dir.join(f).exists()).then_some(dir);
    }
    let dir = cache
        .path()
        .join(repo.folder_name())
        .join("snapshots")
        .join(repo.revision());
    REQUIRED.iter().all(|f| dir.join(f).exists()).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths() {
        let id = |s: &str| parse_id(Path::new(s));
        assert_eq!(
            id("HuggingFaceTB/SmolLM2-135M-Instruct"),
            Some(("HuggingFaceTB/SmolLM2-135M-Instruct".into(), "main".into()))
        );
        assert_eq!(
            id("Qwen/Qwen2.5-Math-7B@v1.0"),
            Some(("Qwen/Qwen2.5-Math-7B".into(), "v1.0".into()))
        );
        for not_an_id in [
            "model",
            "a/b/c",
            "./a/b",
            "/abs/path",
            "a/",
            "/b",
            "a/b@",
            "src/x",
        ] {
            assert_eq!(id(not_an_id), None, "{not_an_id}");
        }
    }
}
