//! Syntax colouring of policy text, with diagnostics underlined. Keywords, strings and
//! comments come from the language's own token stream (`stepup_dsl::token`).

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, Stroke};
use stepup_dsl::token::{TokenKind, is_keyword, tokens};

fn color_of(token: &str) -> Color32 {
    if is_keyword(token) {
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
    // The language's one token stream: the same strings and comments the parser sees.
    for t in tokens(text) {
        let color = match t.kind {
            TokenKind::Comment => Color32::from_rgb(106, 153, 85),
            TokenKind::String => Color32::from_rgb(206, 145, 120),
            TokenKind::Word | TokenKind::Number => color_of(t.text(text)),
            TokenKind::Space | TokenKind::Punct => {
                // One piece per character, so an underline of an empty span (the end of the
                // file) marks one character, not the whole run of spaces.
                for (i, c) in t.text(text).char_indices() {
                    let start = t.span.start + i;
                    push(
                        &mut job,
                        start,
                        start + c.len_utf8(),
                        Color32::from_gray(200),
                    );
                }
                continue;
            }
        };
        push(&mut job, t.span.start, t.span.end, color);
    }
    job
}
