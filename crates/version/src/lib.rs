//! The version every tool prints with `--version`: the release and the
//! git commit it was built from (`unknown` outside a git checkout), so a
//! result can be traced to the code that made it.

/// `0.1.0 (commit 0123456789ab)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SIMPLERL_COMMIT"),
    ")"
);

/// The commit alone.
pub const COMMIT: &str = env!("SIMPLERL_COMMIT");
