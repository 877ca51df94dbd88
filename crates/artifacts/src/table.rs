//! Whole-file Parquet read and atomic write, and typed column access for
//! the stage readers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{Float32Type, Int32Type, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::{AtomicFile, Error, Result, StageSchema};

/// A Parquet file read whole into one batch, remembering where it came
/// from so every error can name it.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub batch: RecordBatch,
}

/// Read every row group of `path` into one batch.
pub fn read_table(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref().to_path_buf();
    let file = File::open(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let pq = |source| Error::Parquet {
        path: path.clone(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let schema = builder.schema().clone();
    let reader = builder.with_batch_size(8192).build().map_err(pq)?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|source| Error::Arrow {
            path: path.clone(),
            source,
        })?);
    }
    let batch =
        arrow::compute::concat_batches(&schema, &batches).map_err(|source| Error::Arrow {
            path: path.clone(),
            source,
        })?;
    Ok(Table { path, batch })
}

/// Write `batch` to `path` (zstd), atomically.
pub fn write_table(path: impl AsRef<Path>, batch: &RecordBatch) -> Result<()> {
    let path = path.as_ref();
    let file = AtomicFile::create(path)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .build();
    let pq = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(pq)?;
    writer.write(batch).map_err(pq)?;
    let file = writer.into_inner().map_err(pq)?;
    file.commit()?;
    Ok(())
}

/// Build a batch in a stage's schema from its columns, in schema order.
pub(crate) fn batch(schema: &StageSchema, columns: Vec<Arc<dyn Array>>) -> RecordBatch {
    RecordBatch::try_new(schema.arrow_schema(), columns)
        .expect("stage writers build columns that match their schema")
}

/// Append `extra` columns (e.g. pass-through metadata) to a batch.
pub fn append_columns(
    batch: &RecordBatch,
    extra: &RecordBatch,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    let mut cols: Vec<_> = batch.columns().to_vec();
    for (f, c) in extra.schema().fields().iter().zip(extra.columns()) {
        if batch.schema().column_with_name(f.name()).is_none() {
            fields.push(f.clone());
            cols.push(c.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
}

/// Typed access to the columns of a batch already passed through
/// [`StageSchema::conform`], so every named column exists with its
/// canonical type.
pub(crate) struct Cols<'a> {
    pub batch: &'a RecordBatch,
}

impl<'a> Cols<'a> {
    fn col(&self, name: &str) -> &'a dyn Array {
        self.batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("conformed batch lacks `{name}`"))
            .as_ref()
    }
    pub fn str(&self, name: &str) -> &'a StringArray {
        self.col(name).as_string::<i32>()
    }
    pub fn i64(&self, name: &str) -> &'a Int64Array {
        self.col(name).as_primitive()
    }
    pub fn f64(&self, name: &str) -> &'a Float64Array {
        self.col(name).as_primitive()
    }
    pub fn bool(&self, name: &str) -> &'a BooleanArray {
        self.col(name).as_boolean()
    }
    pub fn string(&self, name: &str, row: usize) -> String {
        self.str(name).value(row).to_string()
    }
    pub fn opt_string(&self, name: &str, row: usize) -> Option<String> {
        let a = self.str(name);
        a.is_valid(row).then(|| a.value(row).to_string())
    }
    pub fn opt_i64(&self, name: &str, row: usize) -> Option<i64> {
        let a = self.i64(name);
        a.is_valid(row).then(|| a.value(row))
    }
    pub fn ids(&self, name: &str, row: usize) -> Vec<u32> {
        let list = self.col(name).as_list::<i32>();
        if list.is_null(row) {
            return Vec::new();
        }
        let v = list.value(row);
        v.as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&x| x as u32)
            .collect()
    }
    pub fn f32s(&self, name: &str, row: usize) -> Vec<f32> {
        let list = self.col(name).as_list::<i32>();
        if list.is_null(row) {
            return Vec::new();
        }
        let v = list.value(row);
        v.as_primitive::<Float32Type>().values().to_vec()
    }
}
