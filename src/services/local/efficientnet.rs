//! EfficientNet-Lite0 (ImageNet-1k) on candle: top-5 labels and the pooled 1280-d features.
//!
//! Lite0 is MBConv without squeeze-excitation, ReLU6, BatchNorm (eps 1e-3, folded into the
//! convolutions at load time) and TensorFlow "SAME" padding, which is asymmetric on stride-2
//! convolutions (the extra row/column goes after). No crate ships this network, so it is
//! written here: 1x1 convolutions are matrix products on candle, the depthwise and stem
//! convolutions are loops of our own (candle runs a grouped convolution as one convolution per
//! channel, far slower for depthwise) over a zero-padded copy of each plane, one contiguous
//! multiply-add per tap and output row (stride-2 planes stored as even columns, then odd ones),
//! in the same order as a direct loop: 49 ms per image on one thread before, 20.6 ms after,
//! outputs checked against recorded ones (tests/efficientnet_golden.rs).
use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use image::DynamicImage;
use image::imageops::FilterType;

use crate::domain::{EmbedderId, Label};
use crate::services::{ImageAnalyser, ImageAnalysis, normalize};
use crate::{Error, Result};

pub const FEATURES_ID: &str = "local/efficientnet-lite0/pool-1280";
pub const MODEL_NAME: &str = "local/efficientnet-lite0";
const INPUT: usize = 224;
const BN_EPS: f32 = 1e-3;
/// Planes at most this wide run the depthwise convolution channels-last (see `depthwise_hwc`):
/// a forward pass on one thread took 19.2 ms with none, 16.0-16.2 from width 14 down,
/// 15.9-16.7 from 28, 16.5-16.7 from 56 and 17.8-19.1 with every plane (best of ten passes
/// over 20 demo photos, twice each; the wider planes vectorise well as rows already).
const HWC_MAX_WIDTH: usize = 28;
/// Blocks that open a stage with stride 2 (the others use stride 1).
const STRIDE2_BLOCKS: [usize; 4] = [1, 3, 5, 11];

struct Pointwise {
    w: Tensor, // (out, in), BN folded
    b: Tensor, // (out, 1)
    out: usize,
}

struct Spatial {
    w: Vec<f32>, // (out, in, k, k) for the stem; (ch, 1, k, k) for depthwise
    b: Vec<f32>,
    k: usize,
    stride: usize,
}

struct Block {
    expand: Option<Pointwise>,
    dw: Spatial,
    project: Pointwise,
    residual: bool,
}

pub struct EfficientNetLite0 {
    stem: Spatial,
    stem_out: usize,
    blocks: Vec<Block>,
    head: Pointwise,
    fc_w: Tensor, // (1000, 1280)
    fc_b: Tensor, // (1000, 1)
    names: Vec<String>,
    features_id: EmbedderId,
}

fn missing(name: &str) -> Error {
    Error::Inference(format!(
        "EfficientNet-Lite0 weights: tensor '{name}' is missing"
    ))
}

/// (scale, shift) of a BatchNorm layer for folding into the preceding convolution.
fn bn(t: &HashMap<String, Tensor>, prefix: &str) -> Result<(Vec<f32>, Vec<f32>)> {
    let get = |s: &str| -> Result<Vec<f32>> {
        let name = format!("{prefix}.{s}");
        Ok(t.get(&name)
            .ok_or_else(|| missing(&name))?
            .to_vec1::<f32>()?)
    };
    let (g, b, m, v) = (
        get("weight")?,
        get("bias")?,
        get("running_mean")?,
        get("running_var")?,
    );
    let scale: Vec<f32> = g
        .iter()
        .zip(&v)
        .map(|(g, v)| g / (v + BN_EPS).sqrt())
        .collect();
    let shift = b
        .iter()
        .zip(&m)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    Ok((scale, shift))
}

fn conv_weights(t: &HashMap<String, Tensor>, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let w = t.get(name).ok_or_else(|| missing(name))?;
    Ok((w.flatten_all()?.to_vec1::<f32>()?, w.dims().to_vec()))
}

fn folded(w: Vec<f32>, out: usize, scale: &[f32]) -> Vec<f32> {
    let per = w.len() / out;
    w.chunks(per)
        .zip(scale)
        .flat_map(|(row, s)| row.iter().map(move |x| x * s))
        .collect()
}

fn pointwise(t: &HashMap<String, Tensor>, conv: &str, bn_prefix: &str) -> Result<Pointwise> {
    let (w, dims) = conv_weights(t, conv)?;
    let (scale, shift) = bn(t, bn_prefix)?;
    let (out, inp) = (dims[0], dims[1]);
    let w = Tensor::from_vec(folded(w, out, &scale), (out, inp), &Device::Cpu)?;
    let b = Tensor::from_vec(shift, (out, 1), &Device::Cpu)?;
    Ok(Pointwise { w, b, out })
}

fn spatial(
    t: &HashMap<String, Tensor>,
    conv: &str,
    bn_prefix: &str,
    stride: usize,
) -> Result<Spatial> {
    let (w, dims) = conv_weights(t, conv)?;
    let (scale, shift) = bn(t, bn_prefix)?;
    Ok(Spatial {
        w: folded(w, dims[0], &scale),
        b: shift,
        k: dims[3],
        stride,
    })
}

/// TF "SAME": output size and padding before (the remainder goes after).
fn same(input: usize, k: usize, stride: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(input);
    (out, total / 2)
}

fn relu6(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}

impl Spatial {
    /// Zero-padded copy of one `h` x `w` plane for a SAME convolution producing `oh` x `ow`,
    /// into `pad`; returns its width. The loops below then have no bounds test per tap.
    // Kept out of line (this one, `depthwise_planes`, `depthwise_hwc` and `full`): inlined into
    // `forward` the whole network ran 30 % slower (measured: 29 ms against 20.6 ms per image on
    // one thread).
    #[inline(never)]
    fn pad_plane(&self, plane: &[f32], h: usize, w: usize, pad: &mut Vec<f32>) -> usize {
        let (k, s) = (self.k, self.stride);
        let (oh, ph) = same(h, k, s);
        let (ow, pw) = same(w, k, s);
        let hp = ((oh - 1) * s + k).max(h + ph);
        let wp = ((ow - 1) * s + k).max(w + pw);
        pad.clear();
        pad.resize(hp * wp, 0.0);
        for (y, row) in plane.chunks_exact(w).take(h).enumerate() {
            let at = (y + ph) * wp + pw;
            pad[at..at + w].copy_from_slice(row);
        }
        if s == 2 {
            // Even columns first, then odd ones: every stride-2 tap then reads a contiguous
            // run (see `tap`), which vectorises like stride 1.
            let even = wp.div_ceil(2);
            let mut row = vec![0f32; wp];
            for r in pad.chunks_exact_mut(wp) {
                for (x, v) in r.iter().enumerate() {
                    row[if x.is_multiple_of(2) {
                        x / 2
                    } else {
                        even + x / 2
                    }] = *v;
                }
                r.copy_from_slice(&row);
            }
        }
        wp
    }

    /// `dst[ox] += weight * row[kx + ox * stride]` for every output column, on a row laid out
    /// by `pad_plane` (at stride 2: even columns, then odd ones), so the run is contiguous.
    #[inline]
    fn tap(dst: &mut [f32], row: &[f32], kx: usize, stride: usize, weight: f32) {
        let start = if stride == 1 {
            kx
        } else if kx.is_multiple_of(2) {
            kx / 2
        } else {
            row.len().div_ceil(2) + kx / 2
        };
        for (d, x) in dst.iter_mut().zip(&row[start..]) {
            *d += weight * x;
        }
    }

    /// Depthwise convolution + ReLU6 over `x` (ch, h, w). Each output adds its taps in the
    /// same order as a direct loop (bias, then row by row), so results are bit-identical to
    /// one; the padding makes out-of-image taps add zero instead of being skipped. Narrow
    /// planes go channels-last (`depthwise_hwc`).
    fn depthwise(&self, x: &[f32], ch: usize, h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        if w <= HWC_MAX_WIDTH {
            self.depthwise_hwc(x, ch, h, w)
        } else {
            self.depthwise_planes(x, ch, h, w)
        }
    }

    /// The depthwise convolution channels-last: every tap is one multiply-add over all
    /// channels of a pixel (hundreds of contiguous values), where a 7- or 14-wide plane row
    /// leaves the vector units mostly idle. Input and output stay (ch, h, w) for the pointwise
    /// products around it, transposed here. Same taps in the same order per output as
    /// `depthwise_planes`, so the same bits (tested).
    #[inline(never)]
    fn depthwise_hwc(&self, x: &[f32], ch: usize, h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        let (k, s) = (self.k, self.stride);
        let (oh, ph) = same(h, k, s);
        let (ow, pw) = same(w, k, s);
        let hp = ((oh - 1) * s + k).max(h + ph);
        let wp = ((ow - 1) * s + k).max(w + pw);
        let mut pad = vec![0f32; hp * wp * ch];
        for (c, plane) in x.chunks_exact(h * w).take(ch).enumerate() {
            for (y, row) in plane.chunks_exact(w).enumerate() {
                let at = ((y + ph) * wp + pw) * ch + c;
                for (i, v) in row.iter().enumerate() {
                    pad[at + i * ch] = *v;
                }
            }
        }
        let taps = k * k;
        let mut wt = vec![0f32; taps * ch];
        for (c, ker) in self.w.chunks_exact(taps).take(ch).enumerate() {
            for (t, v) in ker.iter().enumerate() {
                wt[t * ch + c] = *v;
            }
        }
        let mut acc = vec![0f32; ch];
        let mut out = vec![0f32; ch * oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                acc.copy_from_slice(&self.b[..ch]);
                for ky in 0..k {
                    for kx in 0..k {
                        let at = ((oy * s + ky) * wp + ox * s + kx) * ch;
                        let src = &pad[at..at + ch];
                        let wk = &wt[(ky * k + kx) * ch..(ky * k + kx + 1) * ch];
                        for ((a, x), wv) in acc.iter_mut().zip(src).zip(wk) {
                            *a += wv * x;
                        }
                    }
                }
                let p = oy * ow + ox;
                for (c, a) in acc.iter().enumerate() {
                    out[c * oh * ow + p] = relu6(*a);
                }
            }
        }
        (out, oh, ow)
    }

    #[inline(never)]
    fn depthwise_planes(
        &self,
        x: &[f32],
        ch: usize,
        h: usize,
        w: usize,
    ) -> (Vec<f32>, usize, usize) {
        let (k, s) = (self.k, self.stride);
        let (oh, _) = same(h, k, s);
        let (ow, _) = same(w, k, s);
        let mut out = vec![0f32; ch * oh * ow];
        let mut pad = Vec::new();
        for c in 0..ch {
            let wp = self.pad_plane(&x[c * h * w..(c + 1) * h * w], h, w, &mut pad);
            let ker = &self.w[c * k * k..(c + 1) * k * k];
            let dst = &mut out[c * oh * ow..(c + 1) * oh * ow];
            for (oy, row) in dst.chunks_exact_mut(ow).enumerate() {
                row.fill(self.b[c]);
                for ky in 0..k {
                    let src = &pad[(oy * s + ky) * wp..(oy * s + ky + 1) * wp];
                    for kx in 0..k {
                        Self::tap(row, src, kx, s, ker[ky * k + kx]);
                    }
                }
                row.iter_mut().for_each(|v| *v = relu6(*v));
            }
        }
        (out, oh, ow)
    }

    /// Full convolution + ReLU6 (the 3-channel stem); taps in the same order as a direct loop
    /// (bias, then channel by channel, row by row).
    #[inline(never)]
    fn full(
        &self,
        x: &[f32],
        cin: usize,
        cout: usize,
        h: usize,
        w: usize,
    ) -> (Vec<f32>, usize, usize) {
        let (k, s) = (self.k, self.stride);
        let (oh, _) = same(h, k, s);
        let (ow, _) = same(w, k, s);
        let mut pads = vec![Vec::new(); cin];
        let mut wp = 0;
        for (c, pad) in pads.iter_mut().enumerate() {
            wp = self.pad_plane(&x[c * h * w..(c + 1) * h * w], h, w, pad);
        }
        let mut out = vec![0f32; cout * oh * ow];
        for (o, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
            for (oy, row) in plane.chunks_exact_mut(ow).enumerate() {
                row.fill(self.b[o]);
                for (c, pad) in pads.iter().enumerate() {
                    for ky in 0..k {
                        let src = &pad[(oy * s + ky) * wp..(oy * s + ky + 1) * wp];
                        for kx in 0..k {
                            Self::tap(row, src, kx, s, self.w[((o * cin + c) * k + ky) * k + kx]);
                        }
                    }
                }
                row.iter_mut().for_each(|v| *v = relu6(*v));
            }
        }
        (out, oh, ow)
    }
}

impl Pointwise {
    fn apply(&self, x: Vec<f32>, cin: usize, hw: usize, act: bool) -> Result<Vec<f32>> {
        let t = Tensor::from_vec(x, (cin, hw), &Device::Cpu)?;
        let y = self.w.matmul(&t)?.broadcast_add(&self.b)?;
        let mut v = y.flatten_all()?.to_vec1::<f32>()?;
        if act {
            v.iter_mut().for_each(|x| *x = relu6(*x));
        }
        Ok(v)
    }
}

impl EfficientNetLite0 {
    /// Loads the converted safetensors weights and the ImageNet class names.
    pub fn load(weights: &Path, names_json: &Path) -> Result<Self> {
        let t = candle_core::safetensors::load(weights, &Device::Cpu)?;
        let stem = spatial(&t, "_conv_stem.weight", "_bn0", 2)?;
        let stem_out = stem.b.len();
        let mut blocks = Vec::new();
        let mut cin = stem_out;
        for i in 0.. {
            let p = format!("_blocks.{i}");
            if !t.contains_key(&format!("{p}._depthwise_conv.weight")) {
                break;
            }
            let expand = if t.contains_key(&format!("{p}._expand_conv.weight")) {
                Some(pointwise(
                    &t,
                    &format!("{p}._expand_conv.weight"),
                    &format!("{p}._bn0"),
                )?)
            } else {
                None
            };
            let stride = if STRIDE2_BLOCKS.contains(&i) { 2 } else { 1 };
            let dw = spatial(
                &t,
                &format!("{p}._depthwise_conv.weight"),
                &format!("{p}._bn1"),
                stride,
            )?;
            let project = pointwise(
                &t,
                &format!("{p}._project_conv.weight"),
                &format!("{p}._bn2"),
            )?;
            let residual = stride == 1 && project.out == cin;
            cin = project.out;
            blocks.push(Block {
                expand,
                dw,
                project,
                residual,
            });
        }
        if blocks.len() != 16 {
            return Err(Error::Inference(format!(
                "EfficientNet-Lite0 weights: expected 16 blocks, found {}",
                blocks.len()
            )));
        }
        let head = pointwise(&t, "_conv_head.weight", "_bn1")?;
        let fc_w = t
            .get("_fc.weight")
            .ok_or_else(|| missing("_fc.weight"))?
            .clone();
        let fc_b = t
            .get("_fc.bias")
            .ok_or_else(|| missing("_fc.bias"))?
            .reshape(((), 1))?;
        let raw = std::fs::read(names_json).map_err(|e| Error::io(names_json, e))?;
        let names: Vec<String> = serde_json::from_slice(&raw)?;
        if names.len() != fc_w.dims()[0] {
            return Err(Error::Inference(format!(
                "{}: {} class names for {} classes",
                names_json.display(),
                names.len(),
                fc_w.dims()[0]
            )));
        }
        Ok(EfficientNetLite0 {
            stem,
            stem_out,
            blocks,
            head,
            fc_w,
            fc_b,
            names,
            features_id: EmbedderId::new(FEATURES_ID),
        })
    }

    /// Centre crop (87.5 %, as the model was evaluated), resize to 224², (x - 127) / 128, CHW.
    pub fn preprocess(image: &DynamicImage) -> Vec<f32> {
        let rgb = image.to_rgb8();
        let (w, h) = rgb.dimensions();
        let side = ((w.min(h) as f32) * 0.875).round().max(1.0) as u32;
        let crop =
            image::imageops::crop_imm(&rgb, (w - side) / 2, (h - side) / 2, side, side).to_image();
        let resized =
            image::imageops::resize(&crop, INPUT as u32, INPUT as u32, FilterType::Triangle);
        let mut out = vec![0f32; 3 * INPUT * INPUT];
        for (i, p) in resized.pixels().enumerate() {
            for c in 0..3 {
                out[c * INPUT * INPUT + i] = (p.0[c] as f32 - 127.0) / 128.0;
            }
        }
        out
    }

    /// Pooled 1280-d features (before L2 normalisation) and the 1000 class probabilities.
    pub fn forward(&self, input: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let (map, h, w) = self.feature_map(input)?;
        let pooled = pool(&map, h * w, |_| true);
        let probs = self.classify(&pooled)?;
        Ok((pooled, probs))
    }

    /// The head's feature map before pooling: 1280 channels of `h × w` cells, channel-major.
    pub fn feature_map(&self, input: &[f32]) -> Result<(Vec<f32>, usize, usize)> {
        let (mut x, mut h, mut w) = self.stem.full(input, 3, self.stem_out, INPUT, INPUT);
        let mut c = self.stem_out;
        for b in &self.blocks {
            let skip = b.residual.then(|| x.clone());
            if let Some(e) = &b.expand {
                x = e.apply(x, c, h * w, true)?;
                c = e.out;
            }
            let (y, oh, ow) = b.dw.depthwise(&x, c, h, w);
            (h, w) = (oh, ow);
            x = b.project.apply(y, c, h * w, false)?;
            c = b.project.out;
            if let Some(s) = skip {
                x.iter_mut().zip(s).for_each(|(a, b)| *a += b);
            }
        }
        Ok((self.head.apply(x, c, h * w, true)?, h, w))
    }

    /// The 1000 class probabilities of a pooled feature vector (the classifier's last layer).
    pub fn classify(&self, pooled: &[f32]) -> Result<Vec<f32>> {
        let f = Tensor::from_vec(pooled.to_vec(), (pooled.len(), 1), &Device::Cpu)?;
        let logits = self
            .fc_w
            .matmul(&f)?
            .broadcast_add(&self.fc_b)?
            .flatten_all()?;
        Ok(candle_nn::ops::softmax(&logits, 0)?.to_vec1::<f32>()?)
    }

    pub fn class_name(&self, i: usize) -> &str {
        &self.names[i]
    }
}

impl ImageAnalyser for EfficientNetLite0 {
    fn analyse(&self, image: &DynamicImage) -> Result<ImageAnalysis> {
        let (mut features, probs) = self.forward(&Self::preprocess(image))?;
        normalize(&mut features);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        let labels = order
            .into_iter()
            .take(5)
            .map(|i| Label {
                name: self.names[i].clone(),
                prob: probs[i],
            })
            .collect();
        Ok(ImageAnalysis {
            labels,
            features,
            model: MODEL_NAME.into(),
            people: crate::services::local::people::score(&probs),
        })
    }

    fn features_id(&self) -> &EmbedderId {
        &self.features_id
    }
}

/// The mean of each channel of a channel-major map of `cells` cells over the cells `keep`
/// admits (every cell for the classifier's own global pooling).
pub fn pool(map: &[f32], cells: usize, keep: impl Fn(usize) -> bool) -> Vec<f32> {
    let kept = (0..cells).filter(|&i| keep(i)).count().max(1) as f32;
    map.chunks(cells.max(1))
        .map(|ch| {
            ch.iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, v)| v)
                .sum::<f32>()
                / kept
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_every_cell_gives_each_channels_mean() {
        // Two channels of four cells, channel-major.
        let map = [1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 4.0, 4.0];
        assert_eq!(pool(&map, 4, |_| true), vec![3.0, 2.0]);
    }

    #[test]
    fn pooling_chosen_cells_averages_only_those() {
        let map = [1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 4.0, 4.0];
        assert_eq!(pool(&map, 4, |i| i >= 2), vec![4.5, 4.0]);
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same(224, 3, 2), (112, 0)); // total 1: nothing before, one after
        assert_eq!(same(56, 5, 2), (28, 1)); // total 3: one before, two after
        assert_eq!(same(14, 5, 1), (14, 2));
        assert_eq!(same(7, 3, 1), (7, 1));
    }

    /// A seeded spatial layer over `ch` channels with values in -1..1 (xorshift).
    fn seeded(ch: usize, k: usize, stride: usize, n: usize, seed: u64) -> (Spatial, Vec<f32>) {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        let w = (0..ch * k * k).map(|_| next()).collect();
        let b = (0..ch).map(|_| next()).collect();
        let x = (0..n).map(|_| next() * 4.0).collect();
        (Spatial { w, b, k, stride }, x)
    }

    #[test]
    fn channels_last_depthwise_gives_the_same_bits_as_the_plane_one() {
        for (k, stride, h, w) in [(3, 1, 7, 7), (5, 1, 14, 14), (5, 2, 28, 28), (3, 2, 9, 6)] {
            let ch = 40;
            let (s, x) = seeded(ch, k, stride, ch * h * w, 0x5eed ^ (k * 31 + h) as u64);
            let planes = s.depthwise_planes(&x, ch, h, w);
            let hwc = s.depthwise_hwc(&x, ch, h, w);
            assert_eq!(
                (hwc.1, hwc.2),
                (planes.1, planes.2),
                "k {k} stride {stride} {h}x{w}"
            );
            let same_bits = hwc
                .0
                .iter()
                .zip(&planes.0)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same_bits, "k {k} stride {stride} {h}x{w}");
        }
    }

    #[test]
    fn depthwise_same_padding_on_a_tiny_tensor() {
        // One channel, 3x3 box filter of ones, stride 1: each output sums its 3x3 neighbourhood.
        let s = Spatial {
            w: vec![1.0; 9],
            b: vec![0.0],
            k: 3,
            stride: 1,
        };
        let x = vec![0.5f32; 16];
        let (y, h, w) = s.depthwise(&x, 1, 4, 4);
        assert_eq!((h, w), (4, 4));
        assert_eq!(y[0], 2.0); // corner: 4 inputs
        assert_eq!(y[5], 4.5); // inside: 9 inputs
        // Stride 2 on 4x4: TF pads nothing before, one after.
        let s2 = Spatial { stride: 2, ..s };
        let (y, h, w) = s2.depthwise(&x, 1, 4, 4);
        assert_eq!((h, w), (2, 2));
        assert_eq!(y[0], 4.5); // rows/cols 0..3 all inside
        assert_eq!(y[3], 2.0); // rows/cols 2..5: 2x2 inside
    }
}
