//! Column specifications and the check that a file's columns meet them.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use crate::{Error, Result};

/// The logical type of a column, in the one width we write. On read any
/// type that casts losslessly to it is accepted (see [`ColType::accepts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Utf8,
    Bool,
    Int64,
    Float64,
    /// Token ids.
    ListInt32,
    /// Per-token log-probs.
    ListFloat32,
}

impl ColType {
    pub fn data_type(self) -> DataType {
        match self {
            ColType::Utf8 => DataType::Utf8,
            ColType::Bool => DataType::Boolean,
            ColType::Int64 => DataType::Int64,
            ColType::Float64 => DataType::Float64,
            ColType::ListInt32 => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)))
            }
            ColType::ListFloat32 => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true)))
            }
        }
    }

    /// Whether a column of type `dt` may be read as this type (by a cast
    /// that loses nothing a stage relies on).
    pub fn accepts(self, dt: &DataType) -> bool {
        use DataType::*;
        let int = |d: &DataType| {
            matches!(
                d,
                Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
            )
        };
        let float = |d: &DataType| matches!(d, Float16 | Float32 | Float64);
        match self {
            ColType::Utf8 => matches!(dt, Utf8 | LargeUtf8 | Utf8View | Null),
            ColType::Bool => matches!(dt, Boolean | Null),
            ColType::Int64 => int(dt) || matches!(dt, Null),
            ColType::Float64 => int(dt) || float(dt) || matches!(dt, Null),
            ColType::ListInt32 => match dt {
                List(f) | LargeList(f) => int(f.data_type()),
                _ => false,
            },
            ColType::ListFloat32 => match dt {
                List(f) | LargeList(f) => float(f.data_type()),
                _ => false,
            },
        }
    }
}

/// One column of a stage's schema.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColType,
    pub nullable: bool,
    pub doc: &'static str,
}

/// Shorthand for the schema tables.
pub const fn col(name: &'static str, ty: ColType, nullable: bool, doc: &'static str) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        nullable,
        doc,
    }
}

/// "a, b, c": a file's columns, for error messages.
pub fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The named columns of one stage's artifact.
#[derive(Debug, Clone, Copy)]
pub struct StageSchema {
    pub stage: &'static str,
    pub columns: &'static [ColumnSpec],
}

impl StageSchema {
    /// The arrow schema we write: exactly these columns, in this order.
    pub fn arrow_schema(&self) -> Arc<Schema> {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.data_type(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|c| c.name)
    }

    /// Check that `batch` (read from `path`) has every column of this
    /// schema with an acceptable type and no nulls where none are allowed,
    /// and return those columns cast to their canonical types, followed by
    /// every other column of `batch` unchanged.
    pub fn conform(&self, path: &Path, batch: &RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for spec in self.columns {
            let Some((idx, field)) = schema.column_with_name(spec.name) else {
                return Err(Error::MissingColumn {
                    path: path.to_path_buf(),
                    stage: self.stage,
                    column: spec.name.to_string(),
                    present: column_list(&schema),
                });
            };
            let wrong_type = || Error::WrongType {
                path: path.to_path_buf(),
                stage: self.stage,
                column: spec.name.to_string(),
                expected: format!("{:?}", spec.ty.data_type()),
                found: format!("{:?}", field.data_type()),
            };
            if !spec.ty.accepts(field.data_type()) {
                return Err(wrong_type());
            }
            let target = spec.ty.data_type();
            let array = batch.column(idx);
            let array = if array.data_type() == &target {
                array.clone()
            } else {
                arrow::compute::cast(array, &target).map_err(|_| wrong_type())?
            };
            check_values(path, spec.name, spec.ty, batch.column(idx), &array)?;
            if !spec.nullable && array.null_count() > 0 {
                let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
                return Err(Error::BadValue {
                    path: path.to_path_buf(),
                    row,
                    column: spec.name.to_string(),
                    message: "null in a column that must have a value".into(),
                });
            }
            fields.push(Field::new(spec.name, target, spec.nullable));
            arrays.push(array);
        }
        for (idx, field) in schema.fields().iter().enumerate() {
            if self.columns.iter().all(|c| c.name != field.name()) {
                fields.push(field.as_ref().clone());
                arrays.push(batch.column(idx).clone());
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|source| Error::Arrow {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A Markdown table of the columns, for docs and `--help`.
    pub fn markdown(&self) -> String {
        let mut s = String::from("| column | type | nullable | meaning |\n|---|---|---|---|\n");
        for c in self.columns {
            s.push_str(&format!(
                "| `{}` | {:?} | {} | {} |\n",
                c.name,
                c.ty,
                if c.nullable { "yes" } else { "no" },
                c.doc
            ));
        }
        s
    }
}

/// What a cast to the canonical type may not do silently: lose a value
/// (arrow's cast makes a value that does not fit null), or keep a null
/// inside a list, or a negative token id. Each is an error naming the row,
/// the column and the element.
fn check_values(
    path: &Path,
    column: &str,
    ty: ColType,
    original: &ArrayRef,
    cast: &ArrayRef,
) -> Result<()> {
    use arrow::array::AsArray;
    use arrow::util::display::array_value_to_string;
    let bad = |row: usize, message: String| Error::BadValue {
        path: path.to_path_buf(),
        row,
        column: column.to_string(),
        message,
    };
    let show = |a: &dyn Array, i: usize| array_value_to_string(a, i).unwrap_or_default();
    if !matches!(ty, ColType::ListInt32 | ColType::ListFloat32) {
        // (An all-null column of type Null has no values to lose.)
        if original.data_type() != &DataType::Null && cast.null_count() > original.null_count() {
            if let Some(i) = (0..cast.len()).find(|&i| cast.is_null(i) && !original.is_null(i)) {
                let target = ty.data_type();
                return Err(bad(
                    i,
                    format!("{} does not fit {target:?}", show(original, i)),
                ));
            }
        }
        return Ok(());
    }
    let list = cast.as_list::<i32>();
    let values = list.values();
    let orig_values: ArrayRef = match original.data_type() {
        DataType::LargeList(_) => original.as_list::<i64>().values().clone(),
        _ => original.as_list::<i32>().values().clone(),
    };
    let ints = values.as_primitive_opt::<arrow::datatypes::Int32Type>();
    if values.null_count() == 0 && ints.is_none_or(|a| a.values().iter().all(|&v| v >= 0)) {
        return Ok(());
    }
    let offsets = list.value_offsets();
    for row in (0..list.len()).filter(|&r| list.is_valid(r)) {
        for j in offsets[row] as usize..offsets[row + 1] as usize {
            let k = j - offsets[row] as usize;
            if values.is_null(j) {
                return Err(bad(
                    row,
                    if orig_values.is_null(j) {
                        format!("element {k} of the list is null")
                    } else {
                        let target = ty.data_type();
                        format!(
                            "element {k}, {}, does not fit {target:?}",
                            show(&orig_values, j)
                        )
                    },
                ));
            }
            if let Some(v) = ints.map(|a| a.value(j)).filter(|&v| v < 0) {
                return Err(bad(row, format!("token id {v} is negative (element {k})")));
            }
        }
    }
    Ok(())
}
