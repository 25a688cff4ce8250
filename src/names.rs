//! Tool-name normalisation, shared by the mock (which resolves names the way
//! the most lenient real servers do) and the policy model (which must judge a
//! name variant *as* the tool it resolves to, or a variant would slip past a
//! deny rule and still execute upstream).

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing and that lenient servers drop when they
/// normalise input. Stripping them is what makes `Post\u{200B}Customers` land.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\0'
    )
}

/// The lenient key of a tool name: NFKC, invisible characters removed,
/// surrounding whitespace trimmed, then lower-cased.
///
/// Two names with the same key are the same tool to a lenient server.
pub fn lenient_key(name: &str) -> String {
    let folded: String = name.nfkc().filter(|c| !is_invisible(*c)).collect();
    folded.trim().to_lowercase()
}

/// How a name is matched against a catalogue of tool names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameMatching {
    /// Case, whitespace, NFKC and invisible characters are folded away.
    #[default]
    Lenient,
    /// Byte-for-byte, as the specification implies.
    Exact,
}

impl NameMatching {
    /// The key under which `name` is looked up in this mode.
    pub fn key(self, name: &str) -> String {
        match self {
            NameMatching::Lenient => lenient_key(name),
            NameMatching::Exact => name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: &str = "WizCommerce Open API_PostCustomers";

    #[test]
    fn variants_fold_to_one_key() {
        let key = lenient_key(POST);
        for variant in [
            "wizcommerce open api_postcustomers",
            "  WizCommerce Open API_PostCustomers\t",
            "ＷｉｚＣｏｍｍｅｒｃｅ Open API_PostCustomers",
            "WizCommerce Open API_Post\u{200B}Customers",
            "WizCommerce Open API_PostCustomers\0",
        ] {
            assert_eq!(lenient_key(variant), key, "{variant:?}");
        }
    }

    #[test]
    fn separators_and_homoglyphs_stay_distinct() {
        let key = lenient_key(POST);
        assert_ne!(lenient_key("WizCommerce_Open_API_PostCustomers"), key);
        // Cyrillic 'о' is not folded by NFKC: a homoglyph is a different tool.
        assert_ne!(lenient_key("WizCommerce Open API_PostCustоmers"), key);
    }

    #[test]
    fn exact_mode_is_identity() {
        assert_eq!(NameMatching::Exact.key(" X "), " X ");
    }
}
