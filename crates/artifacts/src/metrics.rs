//! metrics.parquet, appended to by ppo-step (and sft-step): one row per
//! optimizer step, named the way the field names them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use crate::schema::{col, ColType::*, StageSchema};
use crate::table::{read_table, write_table, Cols};
use crate::{Error, Result};

pub const SCHEMA: StageSchema = StageSchema {
    stage: "metrics",
    columns: &[
        col("step", Int64, false, "optimizer step, from 0"),
        col("pg_loss", Float64, true, "PPO clipped policy-gradient loss"),
        col(
            "pg_clipfrac",
            Float64,
            true,
            "share of tokens whose ratio was clipped",
        ),
        col(
            "ppo_kl",
            Float64,
            true,
            "mean KL between the old and the updated policy on the batch",
        ),
        col(
            "kl_to_ref",
            Float64,
            true,
            "mean KL to the frozen reference",
        ),
        col("entropy", Float64, true, "mean token entropy of the policy"),
        col("vf_loss", Float64, true, "clipped value loss"),
        col("vf_clipfrac", Float64, true, "share of values clipped"),
        col(
            "vf_explained_var",
            Float64,
            true,
            "explained variance of the returns by the critic",
        ),
        col(
            "grad_norm",
            Float64,
            true,
            "global gradient norm before clipping",
        ),
        col("reward_mean", Float64, true, "mean sequence reward"),
        col("reward_std", Float64, true, "std of the sequence reward"),
        col("accuracy", Float64, true, "share of correct responses"),
        col(
            "no_answer_rate",
            Float64,
            true,
            "share of responses without a final answer",
        ),
        col(
            "response_length_mean",
            Float64,
            true,
            "mean response length, tokens",
        ),
        col(
            "response_length_max",
            Float64,
            true,
            "max response length, tokens",
        ),
        col(
            "response_clip_ratio",
            Float64,
            true,
            "share of responses cut at max new tokens",
        ),
        col(
            "advantage_mean",
            Float64,
            true,
            "mean advantage over response tokens",
        ),
        col(
            "advantage_std",
            Float64,
            true,
            "std of the advantage over response tokens",
        ),
        col(
            "logprob_gap",
            Float64,
            true,
            "mean |recomputed old log-prob - rollout log-prob|",
        ),
        col(
            "loss",
            Float64,
            true,
            "total loss (SFT: cross-entropy per response token)",
        ),
        col("lr", Float64, true, "learning rate used for the step"),
        col("elapsed_s", Float64, true, "wall time of the step, seconds"),
        col("tokens_per_s", Float64, true, "trained tokens per second"),
    ],
};

/// One step's metrics. Names not in [`SCHEMA`] are kept as extra columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRow {
    pub step: i64,
    pub values: BTreeMap<String, f64>,
}

fn to_batch(rows: &[MetricsRow]) -> RecordBatch {
    let mut names: Vec<String> = SCHEMA.columns[1..]
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    for r in rows {
        for k in r.values.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut fields = vec![Field::new("step", DataType::Int64, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.step),
    ))];
    for n in &names {
        fields.push(Field::new(n, DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.values.get(n).copied()),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("consistent metrics batch")
}

pub fn read(path: impl AsRef<Path>) -> Result<Vec<MetricsRow>> {
    let t = read_table(path)?;
    let b = SCHEMA.conform(&t.path, &t.batch)?;
    let c = Cols { batch: &b };
    let schema = b.schema();
    let mut rows: Vec<MetricsRow> = (0..b.num_rows())
        .map(|i| MetricsRow {
            step: c.i64("step").value(i),
            values: BTreeMap::new(),
        })
        .collect();
    for (idx, f) in schema.fields().iter().enumerate().skip(1) {
        let Ok(a) = arrow::compute::cast(b.column(idx), &DataType::Float64) else {
            continue;
        };
        let a = a
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast to f64");
        for (i, r) in rows.iter_mut().enumerate() {
            if a.is_valid(i) {
                r.values.insert(f.name().clone(), a.value(i));
            }
        }
    }
    Ok(rows)
}

use arrow::array::Array;

pub fn write(path: impl AsRef<Path>, rows: &[MetricsRow]) -> Result<()> {
    write_table(path, &to_batch(rows))
}

/// Append one row to the metrics file at `path` (creating it), atomically.
/// A row whose step is already in the file replaces it, so a re-run step
/// does not appear twice.
pub fn append(path: impl AsRef<Path>, row: MetricsRow) -> Result<()> {
    let path = path.as_ref();
    let mut rows = match read(path) {
        Ok(r) => r,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    rows.retain(|r| r.step != row.step);
    rows.push(row);
    rows.sort_by_key(|r| r.step);
    write(path, &rows)
}
