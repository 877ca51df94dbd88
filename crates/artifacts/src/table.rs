//! Whole-file Parquet read and atomic write, and typed column access for
//! the stage readers.

use std::collections::BTreeMap;
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
    /// The file's key-value metadata (Parquet footer; Arrow IPC schema
    /// metadata): its [`crate::provenance`].
    pub kv: BTreeMap<String, String>,
}

/// The path that means standard input (read) or standard output (write).
pub const STDIO: &str = "-";

/// Whether `path` is [`STDIO`].
pub fn is_stdio(path: &Path) -> bool {
    path == Path::new(STDIO)
}

/// Read every row group of `path` into one batch. `-` is standard input,
/// and a pipe or FIFO (`/dev/stdin`) works too: the stream is read whole
/// into memory (its size once), then decoded as Parquet or, when it is
/// not Parquet, as an Arrow IPC stream. The file is recorded as an input
/// of this stage's outputs ([`crate::provenance`]).
pub fn read_table(path: impl AsRef<Path>) -> Result<Table> {
    let shown = path.as_ref().display().to_string();
    let t = read_table_unrecorded(path)?;
    crate::provenance::record_input(&shown, &t.kv);
    Ok(t)
}

/// [`read_table`] without recording the file as an input (a file being
/// appended to, such as metrics.parquet).
pub fn read_table_unrecorded(path: impl AsRef<Path>) -> Result<Table> {
    use std::io::Read;
    let path = path.as_ref().to_path_buf();
    if is_stdio(&path) && dist::world().size() > 1 {
        return Err(Error::Io {
            path: PathBuf::from("<stdin>"),
            source: std::io::Error::other(
                "standard input under an MPI job (only rank 0 has it): name the file",
            ),
        });
    }
    if is_stdio(&path) {
        let path = PathBuf::from("<stdin>");
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        return table_of_bytes(path, buf);
    }
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    if path.is_dir() {
        return read_dataset(path);
    }
    let mut file = File::open(&path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io)?;
        return table_of_bytes(path, buf);
    }
    parquet_table(path, file)
}

/// The name of rank `rank`'s part in a dataset directory.
pub fn part_name(rank: usize) -> String {
    format!("part-{rank:05}.parquet")
}

/// Whether `name` is a part of a dataset directory (`part-*.parquet`).
fn is_part(name: &str) -> bool {
    name.starts_with("part-") && name.ends_with(".parquet")
}

/// The parts of the dataset directory `dir`, in name order; an error when
/// it holds something else (not a dataset this tool wrote) or no part.
pub fn dataset_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut parts = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a writer's temporary
        }
        if !is_part(&name) || !e.path().is_file() {
            return Err(io(std::io::Error::other(format!(
                "a directory given as a table must hold only part-*.parquet files (a Parquet dataset), and `{name}` is not one"
            ))));
        }
        parts.push(e.path());
    }
    if parts.is_empty() {
        return Err(io(std::io::Error::other(
            "a Parquet dataset directory with no part-*.parquet files",
        )));
    }
    parts.sort();
    Ok(parts)
}

/// A dataset directory's parts read in name order as one table (the
/// convention DuckDB, polars, pandas and Spark read as one table). Every
/// part must have the first part's columns; its metadata is the table's.
fn read_dataset(dir: PathBuf) -> Result<Table> {
    let mut tables = Vec::new();
    for part in dataset_parts(&dir)? {
        let file = File::open(&part).map_err(|source| Error::Io {
            path: part.clone(),
            source,
        })?;
        tables.push(parquet_table(part, file)?);
    }
    let schema = tables[0].batch.schema();
    for t in &tables[1..] {
        if t.batch.schema() != schema {
            return Err(Error::Arrow {
                path: t.path.clone(),
                source: arrow::error::ArrowError::SchemaError(format!(
                    "its columns differ from those of {}",
                    tables[0].path.display()
                )),
            });
        }
    }
    let batches: Vec<RecordBatch> = tables.iter().map(|t| t.batch.clone()).collect();
    let batch =
        arrow::compute::concat_batches(&schema, &batches).map_err(|source| Error::Arrow {
            path: dir.clone(),
            source,
        })?;
    let kv = tables.swap_remove(0).kv;
    Ok(Table {
        path: dir,
        batch,
        kv,
    })
}

/// The rows of `batch` this rank takes under an N-rank job (rows i with
/// i % N == rank); the whole batch in one process.
pub fn rank_rows(batch: &RecordBatch) -> RecordBatch {
    let w = dist::world();
    if w.size() == 1 {
        return batch.clone();
    }
    let idx =
        arrow::array::UInt32Array::from_iter_values(w.mine(batch.num_rows()).map(|i| i as u32));
    let cols = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c.as_ref(), &idx, None))
        .collect::<Result<Vec<_>, _>>()
        .expect("indices are in range");
    RecordBatch::try_new(batch.schema(), cols).expect("same schema")
}

/// Write `batch` as this rank's part of the dataset directory `path`
/// (`path/part-RANK.parquet`), collectively: every rank of the job calls
/// it. The parts are written into a temporary directory beside `path`,
/// which rank 0 swaps in once every part is on disk, so a reader sees the
/// old output or the whole new one, never some of the parts. In one
/// process this is [`write_table`] (one file).
pub fn write_table_part(path: impl AsRef<Path>, batch: &RecordBatch) -> Result<()> {
    let path = path.as_ref();
    let w = dist::world();
    if w.size() == 1 {
        return write_table(path, batch);
    }
    if is_stdio(path) {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(
                "an MPI job writes a dataset directory of one part per rank: name it with -o, not `-`",
            ),
        });
    }
    // Rank 0 opens the directory being written (and moves a one-file
    // output of an earlier run aside) and tells the others where it is.
    let mut writer = None;
    let mut staging = Vec::new();
    if w.is_root() {
        set_aside_file(path)?;
        let dw = durable::DirWriter::begin(path, |d| {
            dataset_parts(d).map(drop).map_err(|e| e.to_string())
        })?;
        staging = dw.path().to_string_lossy().into_owned().into_bytes();
        writer = Some(dw);
    }
    w.broadcast_bytes(0, &mut staging);
    let staging = PathBuf::from(String::from_utf8(staging).expect("a path rank 0 sent"));
    write_table(staging.join(part_name(w.rank())), batch)?;
    w.barrier();
    if let Some(dw) = writer {
        dw.commit()?;
        remove_set_aside(path);
    }
    w.barrier();
    Ok(())
}

/// Move a one-file table at `path` aside (`.NAME.old-PID`, which
/// `durable::clean_stale` puts back if this process dies before the new
/// output is in), so a directory can take its place.
fn set_aside_file(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        let old = set_aside_name(path);
        std::fs::rename(path, &old).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn set_aside_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    durable::parent_of(path).join(format!(".{name}.old-{}", std::process::id()))
}

fn remove_set_aside(path: &Path) {
    let old = set_aside_name(path);
    if old.is_file() {
        let _ = std::fs::remove_file(old);
    } else if old.is_dir() && dataset_parts(&old).is_ok() {
        let _ = std::fs::remove_dir_all(old);
    }
}

/// A table from the bytes of a stream: Parquet (it starts with `PAR1`)
/// or an Arrow IPC stream.
fn table_of_bytes(path: PathBuf, buf: Vec<u8>) -> Result<Table> {
    if buf.starts_with(b"PAR1") {
        return parquet_table(path, bytes::Bytes::from(buf));
    }
    let arrow = |source| Error::Arrow {
        path: path.clone(),
        source,
    };
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(buf), None)
        .map_err(|e| {
            arrow(arrow::error::ArrowError::ParseError(format!(
                "neither Parquet nor an Arrow IPC stream ({e})"
            )))
        })?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(arrow)?;
    let kv = schema
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let schema = Arc::new(
        schema
            .as_ref()
            .clone()
            .with_metadata(std::collections::HashMap::new()),
    );
    let batch = arrow::compute::concat_batches(&schema, &batches).map_err(arrow)?;
    Ok(Table { path, batch, kv })
}

/// What a Parquet file's text columns decode to, from the sizes its
/// writer recorded (`unencoded_byte_array_data_bytes`), refused before
/// decoding when a column is more than one Arrow string array holds
/// (2 GiB of offsets) or the whole is more than the memory available: a
/// few KB of repeated dictionary entries can decode to gigabytes.
fn check_decoded_size(path: &Path, meta: &parquet::file::metadata::ParquetMetaData) -> Result<()> {
    let mut by_column: BTreeMap<String, i64> = BTreeMap::new();
    for rg in meta.row_groups() {
        for c in rg.columns() {
            if let Some(n) = c.unencoded_byte_array_data_bytes() {
                *by_column.entry(c.column_path().string()).or_default() += n;
            }
        }
    }
    let too_big = |column: &str, message: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("column `{column}`: {message}; not reading it"),
        ),
    };
    if let Some((column, n)) = by_column.iter().find(|(_, &n)| n > i32::MAX as i64) {
        return Err(too_big(
            column,
            format!(
                "its text decodes to {:.2} GB, more than one string column holds (2 GiB)",
                *n as f64 / 1e9
            ),
        ));
    }
    let total: i64 = by_column.values().sum();
    if let Some(have) = dist::available_memory().filter(|&h| total as f64 > h) {
        let (column, _) = by_column.iter().max_by_key(|(_, &n)| n).expect("a column");
        return Err(too_big(
            column,
            format!(
                "the file's text decodes to {:.2} GB, more than the memory available ({:.1} GB)",
                total as f64 / 1e9,
                have / 1e9
            ),
        ));
    }
    Ok(())
}

fn parquet_table<R: parquet::file::reader::ChunkReader + 'static>(
    path: PathBuf,
    reader: R,
) -> Result<Table> {
    let pq = |source| Error::Parquet {
        path: path.clone(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(pq)?;
    check_decoded_size(&path, builder.metadata())?;
    let kv: BTreeMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|e| e.key != "ARROW:schema")
        .filter_map(|e| Some((e.key.clone(), e.value.clone()?)))
        .collect();
    // The batch carries no metadata: a stage that passes columns through
    // writes its own provenance, not its input's.
    let schema = Arc::new(
        builder
            .schema()
            .as_ref()
            .clone()
            .with_metadata(std::collections::HashMap::new()),
    );
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
    Ok(Table { path, batch, kv })
}

/// Write `batch` to `path` (zstd), atomically; `-` writes it to standard
/// output (encoded in memory first: the file's size once).
pub fn write_table(path: impl AsRef<Path>, batch: &RecordBatch) -> Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_key_value_metadata(Some(
            crate::provenance::metadata()
                .into_iter()
                .map(|(k, v)| parquet::file::metadata::KeyValue::new(k, v))
                .collect(),
        ))
        .build();
    let pq = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    if is_stdio(path) {
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(pq)?;
        writer.write(batch).map_err(pq)?;
        writer.close().map_err(pq)?;
        let mut out = std::io::stdout().lock();
        return out
            .write_all(&buf)
            .and_then(|()| out.flush())
            .map_err(|source| Error::Io {
                path: PathBuf::from("<stdout>"),
                source,
            });
    }
    let file = AtomicFile::create(path)?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(pq)?;
    writer.write(batch).map_err(pq)?;
    let file = writer.into_inner().map_err(pq)?;
    // A dataset directory an MPI job wrote here before is replaced by the
    // one file (it is moved aside, then removed once the file is in).
    let dataset = path.is_dir() && dataset_parts(path).is_ok();
    if dataset {
        let old = set_aside_name(path);
        std::fs::rename(path, &old).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    file.commit()?;
    if dataset {
        remove_set_aside(path);
    }
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
