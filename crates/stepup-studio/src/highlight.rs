//! Syntax colouring of policy text, with diagnostics underlined.

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, Stroke};

const KEYWORDS: &[&str] = &[
    "tenant",
    "application",
    "of",
    "policy",
    "override",
    "when",
    "require",
    "factor",
    "for",
    "every",
    "time",
    "and",
    "or",
    "not",
    "in",
    "any",
    "operation",
    "resource",
    "attribute",
    "duration",
    "risk",
    "weight",
    "max_speed",
    "threat_feed",
    "admin",
    "default",
    "off",
    "cache",
    "strength",
    "routine",
    "sensitive",
    "script",
];

fn color_of(token: &str) -> Color32 {
    if KEYWORDS.contains(&token) {
        Color32::from_rgb(86, 156, 214)
    } else if token.starts_with("aal") {
        Color32::from_rgb(197, 134, 192)
    } else if token.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        Color32::from_rgb(181, 206, 168)
    } else {
        Color32::from_gray(220)
    }
}

/// Lays out policy text with colours; `underlines` are byte ranges with their colour.
#[must_use]
pub fn layout(text: &str, underlines: &[(usize, usize, Color32)]) -> LayoutJob {
    let mut job = LayoutJob::default();
    let font = FontId::monospace(13.0);
    let push = |job: &mut LayoutJob, start: usize, end: usize, color: Color32| {
        let Some(piece) = text.get(start..end) else {
            return;
        };
        let under = underlines
            .iter()
            .find(|(s, e, _)| start < (*e).max(s + 1) && *s < end)
            .map(|(_, _, c)| *c);
        let mut f = TextFormat::simple(font.clone(), color);
        if let Some(c) = under {
            f.underline = Stroke::new(2.0, c);
        }
        job.append(piece, 0.0, f);
    };
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while let Some(&(start, c)) = bytes.get(i) {
        let mut j = i + 1;
        let color = if c == '#' {
            while bytes.get(j).is_some_and(|(_, c)| *c != '\n') {
                j += 1;
            }
            Color32::from_rgb(106, 153, 85)
        } else if c == '"' {
            while let Some(&(_, d)) = bytes.get(j) {
                j += 1;
                if d == '"' || d == '\n' {
                    break;
                }
                if d == '\\' {
                    j += 1;
                }
            }
            Color32::from_rgb(206, 145, 120)
        } else if c.is_alphanumeric() || c == '_' {
            while bytes
                .get(j)
                .is_some_and(|(_, c)| c.is_alphanumeric() || *c == '_')
            {
                j += 1;
            }
            let end = bytes.get(j).map_or(text.len(), |(b, _)| *b);
            color_of(text.get(start..end).unwrap_or(""))
        } else {
            Color32::from_gray(200)
        };
        let end = bytes.get(j).map_or(text.len(), |(b, _)| *b);
        push(&mut job, start, end, color);
        i = j;
    }
    job
}
