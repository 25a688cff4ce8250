//! Tool-name variants: spellings a lenient server may fold to the same tool
//! while a byte-exact enforcer sees a different one.

/// How a variant differs from the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// Upper, lower or mixed case.
    Case,
    /// Leading or trailing whitespace.
    Whitespace,
    /// A compatibility form (full-width letters) that NFKC folds back.
    Nfkc,
    /// A look-alike letter from another script; lenient folding keeps it
    /// distinct, so it names another tool.
    Homoglyph,
    /// A zero-width or other invisible character inside the name.
    ZeroWidth,
    /// `_` swapped for `-`, `.` or a space.
    Separator,
}

impl Variant {
    /// Every variant kind.
    pub const ALL: [Variant; 6] = [
        Variant::Case,
        Variant::Whitespace,
        Variant::Nfkc,
        Variant::Homoglyph,
        Variant::ZeroWidth,
        Variant::Separator,
    ];

    /// The word used in the coverage summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Case => "case",
            Variant::Whitespace => "whitespace",
            Variant::Nfkc => "nfkc",
            Variant::Homoglyph => "homoglyph",
            Variant::ZeroWidth => "zero-width",
            Variant::Separator => "separator",
        }
    }
}

/// The `pick`th spelling of `name` of kind `v`.
pub fn variant(name: &str, v: Variant, pick: usize) -> String {
    match v {
        Variant::Case => match pick % 3 {
            0 => name.to_uppercase(),
            1 => name.to_lowercase(),
            _ => name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect(),
        },
        Variant::Whitespace => match pick % 4 {
            0 => format!(" {name}"),
            1 => format!("{name} "),
            2 => format!("\t{name}\n"),
            _ => format!("{name}\u{00a0}"),
        },
        Variant::Nfkc => {
            // Full-width forms of ASCII letters fold back under NFKC.
            let alnum = name.chars().filter(char::is_ascii_alphanumeric).count();
            let target = pick % alnum.max(1);
            let mut seen = 0;
            name.chars()
                .map(|c| {
                    let here = c.is_ascii_alphanumeric() && seen == target;
                    seen += usize::from(c.is_ascii_alphanumeric());
                    if here {
                        char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
                    } else {
                        c
                    }
                })
                .collect()
        }
        Variant::Homoglyph => {
            let swaps = [
                ('o', 'о'),
                ('e', 'е'),
                ('a', 'а'),
                ('C', 'С'),
                ('p', 'р'),
                ('A', 'А'),
            ];
            let present: Vec<_> = swaps.iter().filter(|(f, _)| name.contains(*f)).collect();
            match present.get(pick % present.len().max(1)) {
                Some((from, to)) => name.replacen(*from, &to.to_string(), 1),
                None => format!("{name}\u{0456}"),
            }
        }
        Variant::ZeroWidth => {
            let marks = [
                '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{00ad}',
            ];
            let mark = marks[pick % marks.len()];
            let at = name
                .char_indices()
                .nth((pick / marks.len()) % name.chars().count().max(1))
                .map_or(0, |(i, _)| i);
            let mut out = name.to_owned();
            out.insert(at, mark);
            out
        }
        Variant::Separator => {
            let seps = ["-", ".", " ", "__"];
            name.replacen('_', seps[pick % seps.len()], 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::lenient_key;

    const NAME: &str = "WizCommerce Open API_DeleteCustomer";

    #[test]
    fn folding_variants_fold_back_and_the_others_do_not() {
        for pick in 0..12 {
            for v in [
                Variant::Case,
                Variant::Whitespace,
                Variant::Nfkc,
                Variant::ZeroWidth,
            ] {
                let s = variant(NAME, v, pick);
                assert_ne!(s, NAME, "{v:?} {pick}");
                assert_eq!(lenient_key(&s), lenient_key(NAME), "{v:?} {pick}: {s:?}");
            }
            for v in [Variant::Homoglyph, Variant::Separator] {
                let s = variant(NAME, v, pick);
                assert_ne!(lenient_key(&s), lenient_key(NAME), "{v:?} {pick}: {s:?}");
            }
        }
    }
}
