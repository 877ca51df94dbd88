//! Records the commit being built (SIMPLERL_COMMIT), and rebuilds when
//! HEAD moves.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SIMPLERL_COMMIT={commit}");
    let Some(dir) = git(&["rev-parse", "--git-dir"]) else {
        return;
    };
    let dir = Path::new(&dir);
    let mut watch = vec![dir.join("HEAD")];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let common =
            git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| dir.display().to_string());
        watch.push(Path::new(&common).join(r));
    }
    for p in watch.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
