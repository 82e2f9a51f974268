//! The mood board: what the offline default offers instead of generated images. A PNG sheet
//! titled "MOOD BOARD" with the selected references, their dominant colours and the brand's,
//! and the current prompt. It is never stored or shown as a generated image.
//!
//! Text is drawn with the public-domain 8x8 bitmap font of the `font8x8` crate (scaled), so no
//! font file or system font is needed.
use std::path::Path;

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage, imageops};

use crate::domain::{Campaign, SearchedAs};
use crate::engine::{Library, prompt};
use crate::{Error, Result};

const WIDTH: u32 = 1600;
const MARGIN: u32 = 48;
const BG: Rgb<u8> = Rgb([250, 248, 244]);
const INK: Rgb<u8> = Rgb([30, 30, 34]);
const MUTED: Rgb<u8> = Rgb([110, 110, 118]);

fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, scale: u32, colour: Rgb<u8>) {
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::LATIN_FONTS.get(ch))
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                if bits & (1 << col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * 8 + col) * scale + dx;
                            let py = y + row as u32 * scale + dy;
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Words wrapped to lines of at most `cols` characters.
fn wrap(text: &str, cols: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + w.chars().count() > cols {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn parse_hex(hex: &str) -> Option<Rgb<u8>> {
    let h = hex.trim_start_matches('#');
    let p = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    Some(Rgb([p(0)?, p(2)?, p(4)?]))
}

/// At most this many lines say how the references were searched (a long translation is cut).
const SEARCHED_LINES: usize = 3;
/// Characters in a line of text at scale 2 (16 px each) between the margins.
const COLUMNS: usize = ((WIDTH - 2 * MARGIN) / 16) as usize;
/// Space between the three tiles of a row.
const GUTTER: u32 = 24;
const TILE_W: u32 = (WIDTH - 2 * MARGIN - 2 * GUTTER) / 3;
/// Characters in a line of a tile's caption at scale 2.
const TILE_COLUMNS: usize = (TILE_W / 16) as usize;
/// The most lines under a tile (`tile_lines`), 20 px each.
const TILE_LINES: u32 = 4;

/// What a tile says under its picture, each line within the tile's width: the reference's id,
/// "OUTSIDE FILTER" when it is not in the campaign's objective and audience (from the asset's
/// own group, so a reference chosen from a widened run stays marked after a later run), its
/// match in the campaign's latest run (strength, z, the share of the library below it and the
/// raw similarity, as `campaign recommend` prints them; a reference chosen in an earlier run
/// has none), and its KPI with its percentile in its group.
fn tile_lines(
    asset: &crate::domain::Asset,
    campaign: &Campaign,
    hit: Option<&crate::domain::ReferenceHit>,
) -> Vec<String> {
    let id = asset
        .external_id
        .clone()
        .unwrap_or_else(|| asset.file.clone());
    let mut lines = vec![cut(&id, TILE_COLUMNS)];
    if asset.objective != campaign.objective || asset.node != campaign.node {
        lines.push("OUTSIDE FILTER".into());
    }
    if let Some(h) = hit {
        let mut fields = Vec::new();
        if let Some(s) = &h.strength {
            fields.extend(s.level.map(|l| l.as_str().to_string()));
            fields.push(s.figures());
        }
        fields.push(format!("sim {:.3}", h.similarity));
        lines.push(fitted(&fields, TILE_COLUMNS));
    }
    if let Some(k) = asset.kpi {
        // As `campaign recommend` prints it; one too long for the tile in scientific notation.
        let mut kpi = format!("KPI {k:.4}");
        if kpi.chars().count() > TILE_COLUMNS {
            kpi = format!("KPI {k:.3e}");
        }
        let mut fields = vec![kpi];
        fields.extend(hit.map(|h| format!("(p{:.0})", h.kpi_percentile * 100.0)));
        lines.push(fitted(&fields, TILE_COLUMNS));
    }
    lines
}

/// `text` in at most `columns` characters, ending in "..." when it was cut.
fn cut(text: &str, columns: usize) -> String {
    if text.chars().count() <= columns {
        return text.to_string();
    }
    let kept: String = text.chars().take(columns.saturating_sub(3)).collect();
    format!("{kept}...")
}

/// `fields` joined by spaces in at most `columns` characters: whole fields are dropped from the
/// end rather than a figure cut short; the first is cut (`cut`) only when it alone is too long.
fn fitted(fields: &[String], columns: usize) -> String {
    let mut line = String::new();
    for f in fields {
        let with = if line.is_empty() {
            f.clone()
        } else {
            format!("{line} {f}")
        };
        if with.chars().count() > columns {
            break;
        }
        line = with;
    }
    if line.is_empty() {
        cut(fields.first().map_or("", String::as_str), columns)
    } else {
        line
    }
}

/// The lines under the title: the campaign and its filter, then how its latest run's query was
/// searched when it was not searched as written (a Spanish brief searched as its English
/// translation, or moved toward English text and why it was not translated), as `campaign
/// show` says it. The font has no curly quotes, so quotes are straight.
fn header(campaign: &Campaign, searched_as: Option<&SearchedAs>) -> Vec<String> {
    // The notice that these are not generated images always fits; a long name is cut.
    let rest = format!(
        "  -  {} / {}  -  references chosen, not generated images",
        campaign.objective, campaign.node
    );
    let name = cut(
        &campaign.name,
        COLUMNS.saturating_sub(rest.chars().count()).max(12),
    );
    let mut lines = vec![cut(&format!("{name}{rest}"), COLUMNS)];
    if let Some(said) = searched_as.and_then(SearchedAs::describe) {
        // As `campaign show` says it ("latest run: ..."): the run's hits are the board's strengths.
        let said = format!("Latest search: {said}").replace(['\u{201c}', '\u{201d}'], "\"");
        let mut wrapped: Vec<String> = wrap(&said, COLUMNS)
            .iter()
            .map(|l| cut(l, COLUMNS))
            .collect();
        if wrapped.len() > SEARCHED_LINES {
            wrapped.truncate(SEARCHED_LINES);
            if let Some(last) = wrapped.last_mut() {
                let kept: String = last.chars().take(COLUMNS - 3).collect();
                *last = format!("{kept}...");
            }
        }
        lines.extend(wrapped);
    }
    lines
}

/// Renders the mood board of a campaign to `out` (PNG). Returns the number of references shown.
pub fn render(lib: &Library, campaign: &Campaign, out: &Path) -> Result<usize> {
    let refs: Vec<_> = campaign
        .selected
        .iter()
        .filter_map(|id| lib.store.asset(id).ok().flatten())
        .collect();
    let current = prompt::current(lib, campaign)?;
    // How well each reference matched, and how the query was searched, from the campaign's
    // latest run (a reference chosen in an earlier run shows its KPI only, and whether it is
    // outside the campaign's filter).
    let latest = lib.store.runs(&campaign.id)?.pop();
    let header = header(
        campaign,
        latest.as_ref().and_then(|r| r.searched_as.as_ref()),
    );
    let header_h = 52 + header.len() as u32 * 24 + 14;
    let tile_w = TILE_W;
    let tile_h = tile_w * 3 / 4;
    let row_h = tile_h + 16 + TILE_LINES * 20;
    let rows = refs.len().div_ceil(3) as u32;
    let prompt_lines = current
        .as_ref()
        .map(|p| wrap(&p.prompt, 92))
        .unwrap_or_default();
    let height =
        MARGIN + header_h + rows * row_h + 140 + 40 + prompt_lines.len() as u32 * 24 + MARGIN + 40;
    let mut img = RgbImage::from_pixel(WIDTH, height, BG);

    draw_text(&mut img, MARGIN, MARGIN, "MOOD BOARD", 5, INK);
    for (i, line) in header.iter().enumerate() {
        draw_text(
            &mut img,
            MARGIN,
            MARGIN + 52 + i as u32 * 24,
            line,
            2,
            MUTED,
        );
    }

    let matched: std::collections::HashMap<String, crate::domain::ReferenceHit> = latest
        .map(|r| {
            r.hits
                .into_iter()
                .map(|h| (h.asset_id.clone(), h))
                .collect()
        })
        .unwrap_or_default();
    let mut y = MARGIN + header_h;
    for (i, a) in refs.iter().enumerate() {
        let (col, row) = (i as u32 % 3, i as u32 / 3);
        let x = MARGIN + col * (tile_w + GUTTER);
        let ty = y + row * row_h;
        let limits = crate::services::local::imaging::ImageLimits::of(&lib.config.library);
        let open = |p: &str| crate::services::local::imaging::open_limited(Path::new(p), limits);
        match open(&a.thumbnail_path).or_else(|_| open(&a.stored_path)) {
            Ok(t) => {
                let t = t
                    .resize(tile_w, tile_h, imageops::FilterType::Triangle)
                    .to_rgb8();
                let ox = x + (tile_w - t.width()) / 2;
                let oy = ty + (tile_h - t.height()) / 2;
                imageops::overlay(&mut img, &t, ox as i64, oy as i64);
            }
            Err(e) => {
                tracing::warn!(asset = %a.id, error = %e, "mood board: thumbnail unreadable");
                draw_text(
                    &mut img,
                    x,
                    ty + tile_h / 2,
                    "(image unavailable)",
                    2,
                    MUTED,
                );
            }
        }
        for (i, line) in tile_lines(a, campaign, matched.get(&a.id))
            .iter()
            .enumerate()
        {
            // The id, and the filter warning, in ink; the figures muted.
            let colour = if i == 0 || line == "OUTSIDE FILTER" {
                INK
            } else {
                MUTED
            };
            draw_text(
                &mut img,
                x,
                ty + tile_h + 10 + i as u32 * 20,
                line,
                2,
                colour,
            );
        }
    }
    y += rows * row_h;

    // Palette: brand colours first, then each reference's top colours.
    draw_text(&mut img, MARGIN, y + 8, "PALETTE", 3, INK);
    let mut swatches: Vec<String> = campaign
        .brand
        .as_ref()
        .map(|b| b.palette.clone())
        .unwrap_or_default();
    for a in &refs {
        for c in a.description.palette.iter().take(2) {
            if !swatches.contains(&c.hex) {
                swatches.push(c.hex.clone());
            }
        }
    }
    for (i, hex) in swatches.iter().take(10).enumerate() {
        let x = MARGIN + i as u32 * 148;
        if let Some(c) = parse_hex(hex) {
            for py in y + 44..y + 104 {
                for px in x..x + 128 {
                    img.put_pixel(px, py, c);
                }
            }
        }
        draw_text(&mut img, x, y + 112, hex, 2, MUTED);
    }
    y += 140;

    draw_text(&mut img, MARGIN, y + 8, "PROMPT", 3, INK);
    y += 40;
    if prompt_lines.is_empty() {
        draw_text(
            &mut img,
            MARGIN,
            y,
            "(no prompt yet: run `campaign prompt`)",
            2,
            MUTED,
        );
    }
    for l in &prompt_lines {
        draw_text(&mut img, MARGIN, y, l, 2, INK);
        y += 24;
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = out.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("{}: {e}", out.display())))?;
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    Ok(refs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_draws_text() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        let mut img = RgbImage::from_pixel(100, 20, BG);
        draw_text(&mut img, 0, 0, "MB", 1, INK);
        assert!(img.pixels().any(|p| *p == INK));
        assert_eq!(parse_hex("#ff6600"), Some(Rgb([255, 102, 0])));
    }

    fn campaign() -> Campaign {
        Campaign {
            id: "c1".into(),
            name: "Picnic".into(),
            brief: "Familias de picnic en un parque soleado".into(),
            objective: "likes".into(),
            node: "customers".into(),
            brand: None,
            selected: Vec::new(),
            step: crate::domain::CampaignStep::References,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn a_board_says_its_references_were_searched_as_a_translation() {
        let searched = SearchedAs::Translated(crate::domain::Translation {
            from: "Spanish".into(),
            by: "Apertium spa-eng".into(),
            text: "Families of picnic in a sunny park".into(),
        });
        let lines = header(&campaign(), Some(&searched));
        assert_eq!(
            lines[1..].join(" "),
            "Latest search: read as Spanish: searched as its English translation by Apertium \
             spa-eng: \"Families of picnic in a sunny park\""
        );
    }

    #[test]
    fn a_board_says_why_a_moved_query_was_not_translated() {
        let searched = SearchedAs::Moved {
            language: "Spanish".into(),
            not_translated: Some("Apertium is not installed".into()),
        };
        let said = header(&campaign(), Some(&searched))[1..].join(" ");
        assert!(said.contains("moved toward English text"), "{said}");
        assert!(said.contains("Apertium is not installed"), "{said}");
    }

    #[test]
    fn a_board_searched_as_written_says_only_the_campaign() {
        let lines = header(&campaign(), Some(&SearchedAs::Written));
        assert_eq!(
            lines,
            vec!["Picnic  -  likes / customers  -  references chosen, not generated images"]
        );
        assert_eq!(header(&campaign(), None), lines);
    }

    fn asset(objective: &str, node: &str) -> crate::domain::Asset {
        crate::domain::Asset {
            external_id: Some("coco-000000114174".into()),
            kpi: Some(0.0371),
            ..crate::domain::Asset::for_test("a1", objective, node)
        }
    }

    fn hit(strength: Option<crate::domain::MatchStrength>) -> crate::domain::ReferenceHit {
        crate::domain::ReferenceHit {
            asset_id: "a1".into(),
            external_id: None,
            file: String::new(),
            stored_path: String::new(),
            thumbnail_path: String::new(),
            similarity: 0.7904,
            kpi: Some(0.0371),
            kpi_percentile: 0.83,
            score: 0.958,
            objective: "likes".into(),
            node: "customers".into(),
            description: String::new(),
            elements: Vec::new(),
            strength,
            outside_filter: false,
            inferred: None,
        }
    }

    fn weak() -> Option<crate::domain::MatchStrength> {
        Some(crate::domain::MatchStrength {
            level: Some(crate::domain::StrengthLevel::Weak),
            z: 1.94,
            percentile: 0.975,
        })
    }

    #[test]
    fn a_tile_says_strength_percentile_and_raw_similarity() {
        let lines = tile_lines(
            &asset("likes", "customers"),
            &campaign(),
            Some(&hit(weak())),
        );
        assert_eq!(
            lines,
            vec![
                "coco-000000114174",
                "weak z1.9 p97.5 sim 0.790",
                "KPI 0.0371 (p83)"
            ]
        );
    }

    #[test]
    fn a_tile_outside_the_filter_says_so_on_a_line_of_its_own() {
        let lines = tile_lines(
            &asset("clicks", "customers"),
            &campaign(),
            Some(&hit(weak())),
        );
        assert_eq!(lines[1], "OUTSIDE FILTER");
    }

    #[test]
    fn a_tile_without_a_measured_strength_keeps_the_raw_similarity() {
        let lines = tile_lines(&asset("likes", "customers"), &campaign(), Some(&hit(None)));
        assert_eq!(lines[1], "sim 0.790");
    }

    #[test]
    fn a_reference_from_an_earlier_run_shows_its_kpi_only() {
        let lines = tile_lines(&asset("likes", "customers"), &campaign(), None);
        assert_eq!(lines, vec!["coco-000000114174", "KPI 0.0371"]);
    }

    #[test]
    fn every_tile_line_fits_its_tile() {
        let mut a = asset("clicks", "followers");
        a.external_id = Some("x".repeat(200));
        a.kpi = Some(123_456_789.123_456_78);
        let lines = tile_lines(&a, &campaign(), Some(&hit(weak())));
        assert_eq!(lines.len() as u32, TILE_LINES);
        assert!(
            lines.iter().all(|l| l.chars().count() <= TILE_COLUMNS),
            "{lines:?}"
        );
    }

    #[test]
    fn a_word_longer_than_a_line_is_cut_where_the_board_ends() {
        let searched = SearchedAs::Translated(crate::domain::Translation {
            from: "Spanish".into(),
            by: "Apertium spa-eng".into(),
            text: "https://example.com/".repeat(12),
        });
        let lines = header(&campaign(), Some(&searched));
        assert!(
            lines.iter().all(|l| l.chars().count() <= COLUMNS),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.ends_with("...")), "{lines:?}");
    }

    #[test]
    fn a_long_campaign_name_keeps_the_not_generated_notice() {
        let mut c = campaign();
        c.name = "Summer ".repeat(40);
        let first = &header(&c, None)[0];
        assert!(first.chars().count() <= COLUMNS, "{first}");
        assert!(
            first.ends_with("references chosen, not generated images"),
            "{first}"
        );
    }

    #[test]
    fn a_huge_kpi_keeps_its_percentile_whole() {
        let mut a = asset("likes", "customers");
        a.kpi = Some(1.234_567_89e30);
        let lines = tile_lines(&a, &campaign(), Some(&hit(weak())));
        assert_eq!(lines[2], "KPI 1.235e30 (p83)");
    }

    #[test]
    fn a_strength_line_too_long_drops_whole_fields() {
        let strong = Some(crate::domain::MatchStrength {
            level: Some(crate::domain::StrengthLevel::Strong),
            z: 1234.54,
            percentile: 1.0,
        });
        let lines = tile_lines(
            &asset("likes", "customers"),
            &campaign(),
            Some(&hit(strong)),
        );
        assert_eq!(lines[1], "strong z1234.5 p100.0");
    }

    #[test]
    fn a_long_translation_is_cut_to_three_lines_that_fit() {
        let searched = SearchedAs::Translated(crate::domain::Translation {
            from: "Spanish".into(),
            by: "Apertium spa-eng".into(),
            text: "sunny park ".repeat(60),
        });
        let lines = header(&campaign(), Some(&searched));
        assert_eq!(lines.len(), 1 + SEARCHED_LINES);
        assert!(
            lines.iter().all(|l| l.chars().count() <= COLUMNS),
            "{lines:?}"
        );
        assert!(lines[SEARCHED_LINES].ends_with("..."));
    }
}
