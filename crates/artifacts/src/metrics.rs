//! metrics.parquet, appended to by ppo-step and sft-step: one row per
//! optimizer step, named the way the field names them.
//!
//! [`Metric`] is the one list of names: the schema's columns are made from
//! it, and a row holds values keyed by it, so a misspelt name does not
//! compile.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use crate::schema::{col, ColType::*, ColumnSpec, StageSchema};
use crate::table::{read_table_unrecorded, write_table, Cols};
use crate::{Error, Result};

/// Declares [`Metric`] and [`SCHEMA`] from one table of (variant, column
/// name, meaning).
macro_rules! metrics {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A column of metrics.parquet (every one a nullable Float64).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric {
            $(#[doc = $doc] $variant,)*
        }

        impl Metric {
            /// Every metric, in the file's column order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The column name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)*
                }
            }

            /// What the column means.
            pub const fn doc(self) -> &'static str {
                match self {
                    $(Metric::$variant => $doc,)*
                }
            }
        }

        pub const SCHEMA: StageSchema = StageSchema {
            stage: "metrics",
            columns: &[
                STEP,
                $(col($name, Float64, true, $doc),)*
            ],
        };
    };
}

metrics! {
    // The policy update (ppo-step).
    PgLoss => "pg_loss", "PPO clipped policy-gradient loss";
    PgClipfrac => "pg_clipfrac", "share of tokens whose ratio was clipped";
    PgClipfracLower => "pg_clipfrac_lower", "share of negative-advantage tokens held by the dual clip";
    PpoKl => "ppo_kl", "mean KL between the old and the updated policy on the batch";
    KlToRef => "kl_to_ref", "mean KL to the frozen reference (k1, over response tokens)";
    KlLoss => "kl_loss", "the KL term of the loss, when the KL is a loss term";
    KlCoef => "kl_coef", "KL coefficient used for the step (adaptive with --kl-target)";
    Entropy => "entropy", "mean token entropy of the policy";
    // The critic (ppo-step with GAE).
    VfLoss => "vf_loss", "clipped value loss";
    VfClipfrac => "vf_clipfrac", "share of values clipped";
    VfExplainedVar => "vf_explained_var", "explained variance of the returns by the critic";
    VfGradNorm => "vf_grad_norm", "the critic's global gradient norm before clipping";
    // The batch (ppo-step).
    RewardMean => "reward_mean", "mean sequence reward";
    RewardStd => "reward_std", "std of the sequence reward";
    Accuracy => "accuracy", "share of correct responses";
    NoAnswerRate => "no_answer_rate", "share of responses without a final answer";
    ResponseLengthMean => "response_length_mean", "mean response length, tokens";
    ResponseLengthMax => "response_length_max", "max response length, tokens";
    ResponseClipRatio => "response_clip_ratio", "share of responses cut at max new tokens";
    AdvantageMean => "advantage_mean", "mean advantage over response tokens";
    AdvantageStd => "advantage_std", "std of the advantage over response tokens";
    LogprobGap => "logprob_gap", "mean |old log-prob recomputed before the update - rollout log-prob| (--old-logprobs rollout: the first mini-batch's)";
    TisWeightMean => "tis_weight_mean", "mean truncated importance-sampling weight over response tokens (--tis-cap)";
    TisClipfrac => "tis_clipfrac", "share of response tokens whose importance ratio was capped (--tis-cap)";
    FilteredGroupRatio => "filtered_group_ratio", "share of groups left out because all their rewards were equal (--filter-groups)";
    ExtraPrompts => "extra_prompts", "prompts sampled beyond the rollout's batch by dynamic sampling (--filter-groups --train-groups)";
    OverlongFilteredRatio => "overlong_filtered_ratio", "share of responses cut at the length limit and left out of the loss (--overlong-filter)";
    OverlongPenaltyMean => "overlong_penalty_mean", "mean overlong penalty added to the reward (--overlong-penalty)";
    // Both trainers.
    Loss => "loss", "total loss (SFT: cross-entropy per response token)";
    GradNorm => "grad_norm", "global gradient norm before clipping (the policy's, in ppo-step)";
    Lr => "lr", "learning rate used for the step (the actor's, in ppo-step)";
    CriticLr => "critic_lr", "the critic's learning rate";
    Epoch => "epoch", "epoch of the step, from 0 (sft-step)";
    ElapsedS => "elapsed_s", "wall time of the step, seconds (ppo-step: the update stage, beside rollout_s and verify_s)";
    TokensPerS => "tokens_per_s", "trained tokens per second";
    // Where the time went, and when.
    RolloutS => "rollout_s", "wall time of the rollout that sampled the step's batch, seconds (from the batch file's provenance)";
    VerifyS => "verify_s", "wall time of the verify that scored the step's batch, seconds (from the batch file's provenance)";
    Timestamp => "timestamp", "when the row was written, Unix time in seconds";
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        Metric::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("`{s}` is not a metric of the metrics schema"))
    }
}

/// One step's metrics: the values it has (a metric a step does not
/// measure is absent, and null in the file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRow {
    pub step: i64,
    pub values: BTreeMap<Metric, f64>,
}

impl MetricsRow {
    /// The value of `m`, if the step has it.
    pub fn get(&self, m: Metric) -> Option<f64> {
        self.values.get(&m).copied()
    }
}

fn to_batch(rows: &[MetricsRow]) -> RecordBatch {
    let mut fields = vec![Field::new("step", DataType::Int64, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.step),
    ))];
    for &m in Metric::ALL {
        fields.push(Field::new(m.name(), DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.get(m)),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("consistent metrics batch")
}

/// The one column every metrics file must have.
const STEP: ColumnSpec = col("step", Int64, false, "optimizer step, from 0");
const REQUIRED: StageSchema = StageSchema {
    stage: "metrics",
    columns: &[STEP],
};

/// The rows of a metrics file. Columns that are not metrics are ignored; a
/// metric the file lacks (written by an older version) is absent in every
/// row.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<MetricsRow>> {
    let t = read_table_unrecorded(path)?;
    let b = REQUIRED.conform(&t.path, &t.batch)?;
    let step = Cols { batch: &b }.i64("step");
    let mut rows: Vec<MetricsRow> = (0..b.num_rows())
        .map(|i| MetricsRow {
            step: step.value(i),
            values: BTreeMap::new(),
        })
        .collect();
    for &m in Metric::ALL {
        let Some(a) = float_column(&t.path, &b, m)? else {
            continue;
        };
        for (i, r) in rows.iter_mut().enumerate() {
            if a.is_valid(i) {
                r.values.insert(m, a.value(i));
            }
        }
    }
    Ok(rows)
}

/// The column of metric `m` as f64, if the file has it.
fn float_column(path: &Path, b: &RecordBatch, m: Metric) -> Result<Option<Float64Array>> {
    let schema = b.schema();
    let Some((idx, f)) = schema.column_with_name(m.name()) else {
        return Ok(None);
    };
    let wrong_type = || Error::WrongType {
        path: path.to_path_buf(),
        stage: SCHEMA.stage,
        column: m.name().into(),
        expected: format!("{:?}", Float64.data_type()),
        found: format!("{:?}", f.data_type()),
    };
    if !Float64.accepts(f.data_type()) {
        return Err(wrong_type());
    }
    let a = arrow::compute::cast(b.column(idx), &DataType::Float64).map_err(|_| wrong_type())?;
    Ok(Some(
        a.as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast to f64")
            .clone(),
    ))
}

pub fn write(path: impl AsRef<Path>, rows: &[MetricsRow]) -> Result<()> {
    write_table(path, &to_batch(rows))
}

/// Append one row to the metrics file at `path` (creating it), atomically.
/// A row whose step is already in the file replaces it, so a re-run step
/// (an explicit resume) does not appear twice.
pub fn append(path: impl AsRef<Path>, row: MetricsRow) -> Result<()> {
    add(path.as_ref(), row, true)
}

/// [`append`] for a step numbered from the file itself ([`next_step`]):
/// a row of the same step already there means another writer took the
/// number since, and is an error rather than a lost row.
pub fn append_new(path: impl AsRef<Path>, row: MetricsRow) -> Result<()> {
    add(path.as_ref(), row, false)
}

/// The read-modify-write, under the lock of the file's folder, so two
/// writers at once lose no row.
fn add(path: &Path, row: MetricsRow, replace: bool) -> Result<()> {
    let dir = durable::parent_of(path);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let _lock = durable::lock_dir(&dir)?;
    let mut rows = match read(path) {
        Ok(r) => r,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !replace && rows.iter().any(|r| r.step == row.step) {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "step {} is already there: another writer took that step after this one started (--step N replaces a step's row)",
                    row.step
                ),
            ),
        });
    }
    rows.retain(|r| r.step != row.step);
    rows.push(row);
    rows.sort_by_key(|r| r.step);
    write(path, &rows)
}

/// The next step number of a metrics file: one past its last step, or 0
/// when there is no file yet.
pub fn next_step(path: impl AsRef<Path>) -> Result<i64> {
    let path = path.as_ref();
    if !path.exists() {
        return Ok(0);
    }
    Ok(read(path)?.iter().map(|r| r.step + 1).max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_schema_lists_them_in_order() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "a metric name appears twice");
        let cols: Vec<&str> = SCHEMA.column_names().skip(1).collect();
        assert_eq!(cols, names);
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), *m);
        }
        assert!("pg_los".parse::<Metric>().is_err());
    }
}
