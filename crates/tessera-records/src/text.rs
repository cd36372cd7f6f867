//! Folding text for comparison: lowercase, accents removed (à -> a, ș -> s, ß -> ss),
//! hyphens, apostrophes and runs of whitespace made one space.
//!
//! Used to find the same person typed two ways at two hubs ("Niccolò D'Amico" and
//! "niccolo d amico") and to accept an operator's words in either language ("In
//! presenza", "in-person"). It is not Unicode normalisation: a hand table covers the
//! Latin letters of the languages met at the help desks (Italian, Romanian, Albanian,
//! Polish, Turkish, Spanish, French, German...), which keeps the crate free of
//! dependencies; letters of other scripts are only lowercased.

/// The folded form of `text`, for comparisons only (never stored or shown).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() || is_separator(c) {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        match fold_letter(c) {
            Some(folded) => out.push_str(folded),
            None => out.push(c),
        }
    }
    out
}

/// Marks that people write or leave out at will inside names and words.
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '\'' | '’' | '‘' | '`' | '´' | '.' | ',' | '‐' | '–')
}

fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// Length in characters (what a person counts), not bytes.
pub(crate) fn chars(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_separators() {
        assert_eq!(fold("  Niccolò   D'Amico "), "niccolo d amico");
        assert_eq!(fold("NICCOLO D AMICO"), "niccolo d amico");
        assert_eq!(fold("Anna-Maria"), "anna maria");
        assert_eq!(fold("Ștefan Țurcanu"), "stefan turcanu");
        assert_eq!(fold("Çelë Straße"), "cele strasse");
        assert_eq!(fold("In presenza"), "in presenza");
        assert_eq!(fold("in-person"), "in person");
        assert_eq!(fold("Ольга"), "ольга");
        assert_eq!(fold(""), "");
        assert_eq!(fold(" - "), "");
    }
}
