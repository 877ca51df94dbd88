//! TensorBoard event files, so `tensorboard --logdir runs/` shows a run's
//! metrics: scalars only, each file written whole and atomically under a
//! name fixed by what it holds, so a step that is rerun replaces its file
//! instead of adding a second one.
//!
//! The format is TensorFlow's record file: per record the data length
//! (u64 LE), its masked CRC-32C (u32 LE), the data, the data's masked
//! CRC-32C; each record one `Event` protobuf (`wall_time` = 1, double;
//! `step` = 2, int64; `file_version` = 3, string; `summary` = 5, a
//! `Summary` of `Value`s with `tag` = 1, string, `simple_value` = 2,
//! float). The first event names the file version, `brain.Event:2`.

use std::path::{Path, PathBuf};

use crate::Result;

/// One scalar point.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: i64,
    pub value: f32,
    /// seconds since the Unix epoch
    pub wall_time: f64,
}

/// The folder of a run's event files: `tensorboard/` beside its
/// metrics.parquet.
pub fn dir_beside(metrics: &Path) -> PathBuf {
    durable::parent_of(metrics).join("tensorboard")
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Write `scalars` as the event file `dir/events.out.tfevents.NAME`
/// (atomically; the folder is made if needed). Non-finite values are
/// left out.
pub fn write(dir: &Path, name: &str, scalars: &[Scalar]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(format!("events.out.tfevents.{name}"));
    crate::atomic::write_bytes(&path, &encode(scalars))?;
    Ok(path)
}

/// The bytes of an event file holding `scalars`.
pub fn encode(scalars: &[Scalar]) -> Vec<u8> {
    let wall = scalars.first().map_or_else(now, |s| s.wall_time);
    let mut out = Vec::new();
    let mut version = Vec::new();
    put_double(&mut version, 1, wall);
    put_bytes(&mut version, 3, b"brain.Event:2");
    record(&mut out, &version);
    for s in scalars.iter().filter(|s| s.value.is_finite()) {
        let mut value = Vec::new();
        put_bytes(&mut value, 1, s.tag.as_bytes());
        put_key(&mut value, 2, 5);
        value.extend_from_slice(&s.value.to_le_bytes());
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, &value);
        let mut event = Vec::new();
        put_double(&mut event, 1, s.wall_time);
        put_key(&mut event, 2, 0);
        put_varint(&mut event, s.step as u64);
        put_bytes(&mut event, 5, &summary);
        record(&mut out, &event);
    }
    out
}

fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    put_key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The scalars of the event file at `path`, checking every record's
/// checksums (the reader the tests and tools use to look inside a file).
pub fn read(path: &Path) -> Result<Vec<Scalar>> {
    let bytes = std::fs::read(path).map_err(|source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes).map_err(|message| crate::Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    })
}

/// [`read`] on bytes.
pub fn decode(mut b: &[u8]) -> std::result::Result<Vec<Scalar>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = split(&mut b, 8)?;
        let len_crc = u32::from_le_bytes(split(&mut b, 4)?.try_into().expect("4"));
        if masked_crc(&len) != len_crc {
            return Err("bad length checksum".into());
        }
        let n = u64::from_le_bytes(len.try_into().expect("8")) as usize;
        let data = split(&mut b, n)?;
        let crc = u32::from_le_bytes(split(&mut b, 4)?.try_into().expect("4"));
        if masked_crc(&data) != crc {
            return Err("bad data checksum".into());
        }
        let (mut wall, mut step, mut values) = (0.0, 0i64, Vec::new());
        for (field, v) in fields(&data)? {
            match (field, v) {
                (1, Field::Fixed64(x)) => wall = f64::from_bits(x),
                (2, Field::Varint(x)) => step = x as i64,
                (5, Field::Bytes(summary)) => {
                    for (f, v) in fields(&summary)? {
                        if let (1, Field::Bytes(value)) = (f, v) {
                            let (mut tag, mut val) = (String::new(), None);
                            for (g, w) in fields(&value)? {
                                match (g, w) {
                                    (1, Field::Bytes(t)) => {
                                        tag = String::from_utf8_lossy(&t).into()
                                    }
                                    (2, Field::Fixed32(x)) => val = Some(f32::from_bits(x)),
                                    _ => {}
                                }
                            }
                            if let Some(v) = val {
                                values.push((tag, v));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out.extend(values.into_iter().map(|(tag, value)| Scalar {
            tag,
            step,
            value,
            wall_time: wall,
        }));
    }
    Ok(out)
}

/// The first `n` bytes of `b`, moving `b` past them.
fn split(b: &mut &[u8], n: usize) -> std::result::Result<Vec<u8>, String> {
    if b.len() < n {
        return Err("truncated".into());
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h.to_vec())
}

enum Field {
    Varint(u64),
    Fixed64(u64),
    Bytes(Vec<u8>),
    Fixed32(u32),
}

/// The (field number, value) pairs of a protobuf message.
fn fields(mut b: &[u8]) -> std::result::Result<Vec<(u32, Field)>, String> {
    fn varint(b: &mut &[u8]) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (field, wire) = ((key >> 3) as u32, key & 7);
        let v = match wire {
            0 => Field::Varint(varint(&mut b)?),
            1 => Field::Fixed64(u64::from_le_bytes(split(&mut b, 8)?.try_into().expect("8"))),
            2 => {
                let n = varint(&mut b)? as usize;
                Field::Bytes(split(&mut b, n)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(split(&mut b, 4)?.try_into().expect("4"))),
            w => return Err(format!("unknown wire type {w}")),
        };
        out.push((field, v));
    }
    Ok(out)
}

/// TensorFlow's masked CRC-32C of `data`.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard check value of CRC-32C, and the RFC 3720 vector of
    /// 32 zero bytes.
    /// One scalar event, encoded by hand from the protobuf definitions:
    /// the writer's bytes are exactly these, and they read back.
    #[test]
    fn one_scalar_event_byte_for_byte() {
        let s = Scalar {
            tag: "a/b".into(),
            step: 300,
            value: 1.5,
            wall_time: 2.0,
        };
        let bytes = encode(std::slice::from_ref(&s));
        // Event { wall_time: 2.0, step: 300, summary { value { tag: "a/b", simple_value: 1.5 } } }
        let mut event = vec![0x09];
        event.extend_from_slice(&2.0f64.to_le_bytes());
        event.extend_from_slice(&[0x10, 0xac, 0x02]); // 300 as a varint
        event.extend_from_slice(&[0x2a, 12, 0x0a, 10, 0x0a, 3, b'a', b'/', b'b', 0x15]);
        event.extend_from_slice(&1.5f32.to_le_bytes());
        let tail = &bytes[bytes.len() - (8 + 4 + event.len() + 4)..];
        assert_eq!(&tail[..8], &(event.len() as u64).to_le_bytes());
        assert_eq!(&tail[12..12 + event.len()], &event[..]);
        assert_eq!(decode(&bytes).unwrap(), vec![s]);
        // A flipped byte is caught.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn crc32c_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }
}
