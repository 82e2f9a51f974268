//! Model-free image work done for every asset: safe decoding (format sniffed from the bytes,
//! header checked against a pixel limit before decoding, truncated JPEGs refused), thumbnails,
//! perceptual hash, dominant colours and brightness.
use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use image_hasher::{HashAlg, HasherConfig};

use crate::domain::PaletteColor;

/// Extensions the decoder reads.
pub const SUPPORTED_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "jfif",
];
/// Image extensions we recognise but cannot read; they fail with "unsupported format".
pub const UNSUPPORTED_IMAGE_EXTENSIONS: [&str; 12] = [
    "heic", "heif", "avif", "svg", "psd", "raw", "cr2", "nef", "arw", "dng", "jxl", "ico",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("unsupported format '.{0}' (supported: jpg, png, webp, gif, bmp, tiff)")]
    Unsupported(String),
    #[error("not an image: the content matches no supported format{0}")]
    NotAnImage(String),
    #[error(
        "image is {w}x{h} = {mpx:.1} Mpx, over the limit of {limit_mpx:.1} Mpx (library.max_pixels)"
    )]
    TooLarge {
        w: u32,
        h: u32,
        mpx: f64,
        limit_mpx: f64,
    },
    #[error("truncated JPEG: no end-of-image marker after the last scan")]
    TruncatedJpeg,
    #[error("corrupt image: {0}")]
    Corrupt(String),
}

#[derive(Debug)]
pub struct Decoded {
    pub image: DynamicImage,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

pub fn format_name(f: ImageFormat) -> &'static str {
    f.extensions_str().first().copied().unwrap_or("bin")
}

/// A JPEG's end-of-image marker must follow its last start-of-scan. Inside entropy-coded data
/// 0xFF is always stuffed, so the pair FF D9 there can only be the real marker.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let find_last = |m: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    match (find_last(0xDA), find_last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

pub fn decode(bytes: &[u8], extension: &str, max_pixels: u64) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let ext = extension.to_ascii_lowercase();
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let Some(format) = reader.format() else {
        if UNSUPPORTED_IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            return Err(DecodeError::Unsupported(ext));
        }
        let hint = if ext.is_empty() {
            String::new()
        } else {
            format!(" (despite the .{ext} extension)")
        };
        return Err(DecodeError::NotAnImage(hint));
    };
    if !matches!(
        format,
        ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp
            | ImageFormat::Tiff
    ) {
        return Err(DecodeError::Unsupported(format_name(format).to_string()));
    }
    // Check the declared size before decoding anything (decompression bombs).
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| DecodeError::Corrupt(format!("unreadable header: {e}")))?;
    let px = w as u64 * h as u64;
    if px > max_pixels {
        return Err(DecodeError::TooLarge {
            w,
            h,
            mpx: px as f64 / 1e6,
            limit_mpx: max_pixels as f64 / 1e6,
        });
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::TruncatedJpeg);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(px.saturating_mul(16).max(1 << 20));
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    Ok(Decoded {
        width: image.width(),
        height: image.height(),
        image,
        format,
    })
}

/// The limits ingest applies (`library.max_file_bytes`, `library.max_pixels`), applied to every
/// image decoded later too: stored originals (in `reference` mode the file can change after
/// ingest), thumbnails, exports and images in cloud answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    /// The defaults of `[library]`, for callers that do not see the library's config (the
    /// Bedrock services); the engine checks its own limits before handing them images.
    fn default() -> Self {
        Self {
            max_bytes: 100_000_000,
            max_pixels: 50_000_000,
        }
    }
}

impl ImageLimits {
    pub fn of(library: &crate::config::LibraryConfig) -> Self {
        Self {
            max_bytes: library.max_file_bytes,
            max_pixels: library.max_pixels,
        }
    }
}

/// Decodes image bytes within `limits`: the byte size, then the header's pixel count, both
/// before any pixel is decoded.
pub fn decode_limited(bytes: &[u8], limits: ImageLimits) -> Result<DynamicImage, DecodeError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(DecodeError::Corrupt(format!(
            "{} bytes, over the limit of {} (library.max_file_bytes)",
            bytes.len(),
            limits.max_bytes
        )));
    }
    decode(bytes, "", limits.max_pixels).map(|d| d.image)
}

/// Reads and decodes an image file within `limits`; never reads more than `max_bytes` + 1
/// bytes of it. The error names the file.
pub fn open_limited(path: &Path, limits: ImageLimits) -> crate::Result<DynamicImage> {
    let named = |reason: String| crate::Error::Invalid(format!("{}: {reason}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| crate::Error::io(path, e))?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(named(format!(
            "larger than {} bytes (library.max_file_bytes); it is not read",
            limits.max_bytes
        )));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    decode(&bytes, ext, limits.max_pixels)
        .map(|d| d.image)
        .map_err(|e| named(e.to_string()))
}

/// JPEG thumbnail bytes, longest side `px`.
pub fn thumbnail_jpeg(image: &DynamicImage, px: u32) -> Result<Vec<u8>, image::ImageError> {
    let t = image.thumbnail(px, px).to_rgb8();
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    t.write_with_encoder(enc)?;
    Ok(out)
}

/// 64-bit gradient perceptual hash, base64.
pub fn phash(image: &DynamicImage) -> String {
    let hasher = HasherConfig::new()
        .hash_size(8, 8)
        .hash_alg(HashAlg::Gradient)
        .to_hasher();
    hasher.hash_image(image).to_base64()
}

/// Hamming distance between two hashes from `phash` (None when either does not parse).
pub fn phash_distance(a: &str, b: &str) -> Option<u32> {
    let a = image_hasher::ImageHash::<Box<[u8]>>::from_base64(a).ok()?;
    let b = image_hasher::ImageHash::<Box<[u8]>>::from_base64(b).ok()?;
    Some(a.dist(&b))
}

/// Mean luma, 0..1.
pub fn brightness(image: &DynamicImage) -> f32 {
    let small = image.thumbnail(64, 64).to_luma8();
    let n = small.pixels().len().max(1) as f32;
    small.pixels().map(|p| p.0[0] as f32).sum::<f32>() / n / 255.0
}

/// The `k` dominant colours by k-means on a 64-px copy (deterministic: farthest-point seeding,
/// fixed iterations), largest share first.
pub fn palette(image: &DynamicImage, k: usize) -> Vec<PaletteColor> {
    let small = image.thumbnail(64, 64).to_rgb8();
    let px: Vec<[f32; 3]> = small
        .pixels()
        .map(|p| [p.0[0] as f32, p.0[1] as f32, p.0[2] as f32])
        .collect();
    if px.is_empty() || k == 0 {
        return Vec::new();
    }
    let d2 = |a: &[f32; 3], b: &[f32; 3]| (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f32>();
    let mean = px.iter().fold([0f32; 3], |acc, p| {
        [acc[0] + p[0], acc[1] + p[1], acc[2] + p[2]]
    });
    let n = px.len() as f32;
    let mut centres = vec![[mean[0] / n, mean[1] / n, mean[2] / n]];
    while centres.len() < k {
        let far = px
            .iter()
            .max_by(|a, b| {
                let da = centres.iter().map(|c| d2(a, c)).fold(f32::MAX, f32::min);
                let db = centres.iter().map(|c| d2(b, c)).fold(f32::MAX, f32::min);
                da.total_cmp(&db)
            })
            .copied()
            .unwrap_or([0.0; 3]);
        centres.push(far);
    }
    let mut assign = vec![0usize; px.len()];
    for _ in 0..12 {
        for (i, p) in px.iter().enumerate() {
            assign[i] = (0..centres.len())
                .min_by(|a, b| d2(p, &centres[*a]).total_cmp(&d2(p, &centres[*b])))
                .unwrap_or(0);
        }
        let mut sums = vec![[0f32; 4]; centres.len()];
        for (p, a) in px.iter().zip(&assign) {
            let s = &mut sums[*a];
            s[0] += p[0];
            s[1] += p[1];
            s[2] += p[2];
            s[3] += 1.0;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[3] > 0.0 {
                *c = [s[0] / s[3], s[1] / s[3], s[2] / s[3]];
            }
        }
    }
    let mut counts = vec![0usize; centres.len()];
    assign.iter().for_each(|a| counts[*a] += 1);
    let mut out: Vec<PaletteColor> = centres
        .iter()
        .zip(&counts)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| {
            let rgb = [c[0].round() as u8, c[1].round() as u8, c[2].round() as u8];
            PaletteColor {
                hex: format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]),
                share: *n as f32 / px.len() as f32,
                name: colour_name(rgb),
            }
        })
        .collect();
    out.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| a.hex.cmp(&b.hex)));
    out
}

/// A plain English name for an sRGB colour, from its hue, saturation and lightness.
pub fn colour_name(rgb: [u8; 3]) -> String {
    let [r, g, b] = rgb.map(|v| v as f32 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let l = (max + min) / 2.0;
    let d = max - min;
    let s = if d == 0.0 {
        0.0
    } else {
        d / (1.0 - (2.0 * l - 1.0).abs()).max(1e-6)
    };
    if s < 0.15 || d < 0.06 {
        return match l {
            l if l < 0.12 => "black",
            l if l < 0.35 => "dark grey",
            l if l < 0.65 => "grey",
            l if l < 0.9 => "light grey",
            _ => "white",
        }
        .into();
    }
    let h = if max == r {
        60.0 * (((g - b) / d).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    let base = match h {
        h if !(15.0..345.0).contains(&h) => "red",
        h if h < 40.0 => {
            if l < 0.45 {
                "brown"
            } else {
                "orange"
            }
        }
        h if h < 70.0 => {
            if l < 0.35 {
                "olive"
            } else {
                "yellow"
            }
        }
        h if h < 160.0 => "green",
        h if h < 195.0 => "teal",
        h if h < 255.0 => "blue",
        h if h < 290.0 => "purple",
        _ => "pink",
    };
    let shade = if l < 0.3 {
        "dark "
    } else if l > 0.75 {
        "light "
    } else {
        ""
    };
    format!("{shade}{base}")
}

#[cfg(test)]
mod limited_tests {
    use super::*;

    fn png_file(dir: &Path, w: u32, h: u32) -> std::path::PathBuf {
        let p = dir.join(format!("{w}x{h}.png"));
        image::GrayImage::new(w, h).save(&p).unwrap();
        p
    }

    #[test]
    fn open_limited_refuses_more_pixels_than_the_limit_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = png_file(dir.path(), 200, 100);
        let limits = ImageLimits {
            max_bytes: 1 << 20,
            max_pixels: 19_999,
        };
        let e = open_limited(&p, limits).unwrap_err().to_string();
        assert!(
            e.contains("200x100.png") && e.contains("library.max_pixels"),
            "{e}"
        );
    }

    #[test]
    fn open_limited_refuses_a_file_over_the_byte_limit_without_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let p = png_file(dir.path(), 200, 100);
        let limits = ImageLimits {
            max_bytes: 10,
            max_pixels: 1 << 30,
        };
        let e = open_limited(&p, limits).unwrap_err().to_string();
        assert!(e.contains("library.max_file_bytes"), "{e}");
    }

    #[test]
    fn open_limited_decodes_an_image_within_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = png_file(dir.path(), 200, 100);
        let img = open_limited(&p, ImageLimits::default()).unwrap();
        assert_eq!((img.width(), img.height()), (200, 100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn two_tone() -> DynamicImage {
        // 3/4 blue, 1/4 red.
        let img = RgbImage::from_fn(80, 40, |x, _| {
            if x < 60 {
                Rgb([20, 40, 200])
            } else {
                Rgb([220, 20, 20])
            }
        });
        DynamicImage::ImageRgb8(img)
    }

    fn encode(img: &DynamicImage, f: ImageFormat) -> Vec<u8> {
        let mut v = Vec::new();
        img.write_to(&mut Cursor::new(&mut v), f).unwrap();
        v
    }

    #[test]
    fn palette_finds_dominant_colours_with_shares() {
        let p = palette(&two_tone(), 5);
        assert!(p.len() >= 2);
        assert_eq!(p[0].name, "blue");
        assert!((p[0].share - 0.75).abs() < 0.05, "{p:?}");
        assert!(p.iter().any(|c| c.name == "red"));
        let total: f32 = p.iter().map(|c| c.share).sum();
        assert!((total - 1.0).abs() < 1e-4);
    }

    #[test]
    fn colour_names() {
        assert_eq!(colour_name([255, 255, 255]), "white");
        assert_eq!(colour_name([0, 0, 0]), "black");
        assert_eq!(colour_name([0, 160, 0]), "green");
        assert_eq!(colour_name([10, 20, 90]), "dark blue");
        assert_eq!(colour_name([150, 90, 30]), "brown");
    }

    #[test]
    fn phash_is_stable_and_near_for_resized_copies() {
        let a = two_tone();
        let b = DynamicImage::ImageRgb8(image::imageops::resize(
            &a.to_rgb8(),
            160,
            80,
            image::imageops::FilterType::Triangle,
        ));
        assert_eq!(phash(&a), phash(&a));
        assert!(phash_distance(&phash(&a), &phash(&b)).unwrap() <= 4);
    }

    #[test]
    fn decode_rejects_bad_input_with_reasons() {
        let jpeg = encode(&two_tone(), ImageFormat::Jpeg);
        assert!(decode(&jpeg, "jpg", 1_000_000).is_ok());
        assert_eq!(decode(&[], "jpg", 1).unwrap_err(), DecodeError::Empty);
        assert_eq!(
            decode(&jpeg[..jpeg.len() - 40], "jpg", 1_000_000).unwrap_err(),
            DecodeError::TruncatedJpeg
        );
        assert!(matches!(
            decode(b"hello, I am text", "jpg", 1_000_000).unwrap_err(),
            DecodeError::NotAnImage(h) if h.contains(".jpg")
        ));
        assert!(matches!(
            decode(b"not really heic", "heic", 1_000_000).unwrap_err(),
            DecodeError::Unsupported(_)
        ));
        assert!(matches!(
            decode(&jpeg, "jpg", 100).unwrap_err(),
            DecodeError::TooLarge { w: 80, h: 40, .. }
        ));
        let png = encode(&two_tone(), ImageFormat::Png);
        assert!(matches!(
            decode(&png[..png.len() - 30], "png", 1_000_000).unwrap_err(),
            DecodeError::Corrupt(_)
        ));
    }
}
