//! The stylesheet and the script, compiled into the binary: the page needs nothing
//! from the network, not even a font.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

pub async fn style() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "no-cache")], STYLE)
}

pub async fn script() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "no-cache")], SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::STYLE;

    /// A colour of the stylesheet: `#rrggbb`, or `var(--name)` from `:root`.
    fn colour(value: &str) -> [f64; 3] {
        let hex = match value.strip_prefix("var(--").and_then(|v| v.strip_suffix(')')) {
            Some(name) => {
                let at = STYLE.find(&format!("--{name}:")).unwrap_or_else(|| panic!("no --{name} in :root"));
                let rest = &STYLE[at + name.len() + 3..];
                rest.trim_start().split([';', ' ']).next().unwrap().to_string()
            }
            None => value.to_string(),
        };
        let hex = hex.trim_start_matches('#');
        assert_eq!(hex.len(), 6, "{value}: {hex}");
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
        [byte(0), byte(2), byte(4)].map(|c| f64::from(c) / 255.0)
    }

    /// WCAG 2.x relative luminance and contrast ratio.
    fn contrast(a: &str, b: &str) -> f64 {
        let lum = |c: [f64; 3]| {
            let lin = c.map(|v| if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) });
            0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
        };
        let (x, y) = (lum(colour(a)), lum(colour(b)));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    /// Every text colour of the stylesheet on the backgrounds it is used on: at
    /// least 4.5:1, WCAG AA for normal text (the page has no large-text exemption).
    #[test]
    fn every_text_and_background_pair_meets_wcag_aa() {
        let pairs = [
            ("var(--ink)", "#ffffff", "body text"),
            ("var(--muted)", "#ffffff", "hints, muted text"),
            ("var(--muted)", "var(--soft)", "hints in a notice"),
            ("var(--blue)", "#ffffff", "links, secondary buttons"),
            ("var(--blue-dark)", "var(--soft)", "a secondary button hovered"),
            ("#ffffff", "var(--blue)", "buttons"),
            ("#ffffff", "var(--blue-dark)", "the header, a button hovered"),
            ("var(--red)", "#ffffff", "errors next to their field"),
            ("var(--red)", "var(--red-soft)", "error links in the error notice"),
            ("var(--ink)", "var(--red-soft)", "the error notice"),
            ("var(--ink)", "var(--green-soft)", "the saved notice"),
            ("var(--ink)", "var(--amber-soft)", "the warning notice"),
            ("var(--green)", "#ffffff", "open, good tags"),
            ("var(--ink)", "var(--soft)", "table headers, the week's days"),
        ];
        // The measure itself: WCAG's own examples.
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!(contrast("#777777", "#ffffff") < 4.5, "#777 on white is the classic near miss (4.48:1)");
        for (text, background, what) in pairs {
            let ratio = contrast(text, background);
            assert!(ratio >= 4.5, "{what}: {text} on {background} is {ratio:.2}:1, below 4.5:1");
        }
    }
}
