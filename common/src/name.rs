//! The rules a user name must follow, and the two forms names are compared in, so that no
//! two users online look alike (PROTOCOL.md §2.2).

use std::collections::HashMap;
use std::sync::LazyLock;

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The folded form of a user name: full Unicode case folding and NFKC, so `Teacher` is
/// `teacher`, `ß` is `ss`, fullwidth `ＳＥＲＶＥＲ` is `server`, and `é` composed (NFC) or
/// decomposed (NFD) is one letter (PROTOCOL.md §2.2). Two names with the same folded form
/// are *the same name*. It is for comparing only: users are always shown a name exactly as
/// its holder typed it (the display form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(String);

impl NameKey {
    /// The folded form of `name`; any string has one.
    pub fn of(name: &str) -> NameKey {
        NameKey(fixed_point(name, fold_once))
    }

    /// The folded form as text (for logs and tests; never shown as a name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The look-alike form of a user name: its Unicode TR39 confusable skeleton (NFKC, then
/// NFD, the confusables map, NFD), case folded, as IRC servers such as Ergo compute it
/// (PROTOCOL.md §2.2). Cyrillic `ЅЕRVЕR`, Greek `SERVΕR` and `SERVER` have one skeleton.
///
/// It is a second form beside [`NameKey`], not a step of it: case folding first would turn
/// Greek capital `Ε` (a look-alike of `E`) into small `ε` (a look-alike of `ꞓ`), and the
/// skeleton alone keeps `Ian` apart from `ian` (it maps capital `I` to `l`). So two names
/// *clash* when either form is the same ([`clash`]).
///
/// The skeleton also makes `l`, `1`, `I` and `|` one letter, `0` and `o` another, and `rn`
/// the same as `m`: `bob1` and `bobl` clash. That is intended: they are hard to tell apart
/// on a screen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Skeleton(String);

impl Skeleton {
    /// The look-alike form of `name`; any string has one.
    pub fn of(name: &str) -> Skeleton {
        Skeleton(fixed_point(name, skeleton_once))
    }

    /// The skeleton as text (for logs and tests; never shown as a name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `a` and `b` cannot both be online (PROTOCOL.md §2.2): the same folded form, or
/// the same skeleton.
pub fn clash(a: &str, b: &str) -> bool {
    NameKey::of(a) == NameKey::of(b) || Skeleton::of(a) == Skeleton::of(b)
}

/// Rounds of a fold at most. Every name seen reaches its fixed point in one or two (a
/// round's last step can leave a capital for the next one to fold); a property test checks
/// that a form folds to itself.
const FOLD_ROUNDS: usize = 4;

/// `round` applied to `name` until it changes nothing (at most [`FOLD_ROUNDS`] times), so
/// a form folds to itself and the form of a form is the form.
fn fixed_point(name: &str, round: fn(&str) -> String) -> String {
    let mut form = round(name);
    for _ in 1..FOLD_ROUNDS {
        let next = round(&form);
        if next == form {
            break;
        }
        form = next;
    }
    form
}

/// Case fold first (`ſ` is `s`), NFKC for width and compatibility forms, which can give a
/// capital (`ℌ` is `H`): fold and compose again.
fn fold_once(s: &str) -> String {
    s.chars()
        .default_case_fold()
        .nfkc()
        .default_case_fold()
        .nfkc()
        .collect()
}

/// NFKC first, since the confusables map lacks some width forms; the skeleton; then case
/// folding, as its prototypes keep the case they had (`Ѕ` is `S`).
fn skeleton_once(s: &str) -> String {
    let compatible: String = s.nfkc().collect();
    unicode_security::skeleton(&compatible)
        .default_case_fold()
        .collect()
}

/// The two forms of each of [`RESERVED_NAMES`], computed once.
static RESERVED_FORMS: LazyLock<Vec<(NameKey, Skeleton)>> = LazyLock::new(|| {
    RESERVED_NAMES
        .iter()
        .map(|r| (NameKey::of(r), Skeleton::of(r)))
        .collect()
});

/// Whether `name` clashes with a reserved word.
fn is_reserved(name: &str) -> bool {
    let (key, skeleton) = (NameKey::of(name), Skeleton::of(name));
    RESERVED_FORMS
        .iter()
        .any(|(k, s)| *k == key || *s == skeleton)
}

/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Names no user may take, nor any name that [`clash`]es with one (`server`, `ЅЕRVЕR`,
/// `＊`): the server's own name, the public recipient, and the broadcast shorthand.
pub const RESERVED_NAMES: &[&str] = &[crate::SERVER_NAME, crate::EVERYONE, "*"];

/// Characters a name may not start with: they introduce commands on one port or another.
pub const FORBIDDEN_FIRST: &[char] = &['/', '!', '@', '\\', '#'];

/// Why a name was refused. The `Display` text is what the user is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", content = "detail", rename_all = "snake_case")]
pub enum NameError {
    /// No name at all.
    #[error("the name is empty")]
    Empty,
    /// More than [`MAX_NAME_CHARS`] characters.
    #[error("the name is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A space, a control character or another character that cannot appear in a name.
    #[error("the name contains {0:?}; use letters, digits and punctuation without spaces")]
    ForbiddenChar(char),
    /// Starts with a command character.
    #[error("the name may not start with {0:?}")]
    ForbiddenFirst(char),
    /// One of [`RESERVED_NAMES`], or a name that [`clash`]es with one (`ЅЕRVЕR`).
    #[error("the name {0:?} is reserved")]
    Reserved(String),
    /// The login bytes were not UTF-8.
    #[error("the name is not valid UTF-8")]
    InvalidUtf8,
}

/// Checks a name against every rule; `Ok` means it may be registered (if not taken).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong {
            max: MAX_NAME_CHARS,
        });
    }
    if let Some(c) = name.chars().find(|&c| is_forbidden_char(c)) {
        return Err(NameError::ForbiddenChar(c));
    }
    if FORBIDDEN_FIRST.contains(&first) {
        return Err(NameError::ForbiddenFirst(first));
    }
    // Compared folded, so no look-alike of `SERVER` can speak as the server.
    if is_reserved(name) {
        return Err(NameError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Whitespace, control characters, the characters that delimit a raw-name login (`{`, `}`),
/// the JSON quote, and the line port's `:` (so a name cannot fake `alice: hi` lines).
fn is_forbidden_char(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '{' | '}' | '"' | ':' | ',')
        // Characters that show nothing make look-alike names, or blank ones.
        || is_invisible(c)
}

/// Characters that show nothing, so a name holding them looks like another one (`bob` and
/// `bob\u{AD}`) or like no name at all (U+2800 alone): every format character (general
/// category Cf: zero-width, bidirectional, tags, ...), every other default-ignorable code
/// point (variation selectors, Hangul fillers, ...), and characters drawn blank.
fn is_invisible(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
        || is_other_default_ignorable(c)
        || BLANK.contains(&c)
}

/// The default-ignorable code points that are not Cf: Other_Default_Ignorable_Code_Point and
/// Variation_Selector (Unicode's PropList.txt). Unicode keeps these ranges, unassigned parts
/// included, for ignorables to come, so the list does not age; a test checks it against the
/// Unicode Character Database's Default_Ignorable_Code_Point.
fn is_other_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{34F}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2065}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Visible characters that are drawn as blank space: the braille blank, and the musical
/// null notehead (an empty symbol).
const BLANK: &[char] = &['\u{2800}', '\u{1D159}'];

/// Decodes and validates the raw bytes of a login name.
pub fn parse_name(bytes: &[u8]) -> Result<String, NameError> {
    let name = std::str::from_utf8(bytes).map_err(|_| NameError::InvalidUtf8)?;
    validate_name(name)?;
    Ok(name.to_string())
}

/// The holders of names, where no two names that [`clash`] are held at once
/// (PROTOCOL.md §2.2): the chat service's directory of who is online. Each holder keeps its
/// display form; lookups go by folded form, then by skeleton.
#[derive(Debug)]
pub struct NameTable<V> {
    /// Every holder, by the folded form of its name.
    held: HashMap<NameKey, Held<V>>,
    /// The folded form of the holder of each skeleton.
    skeletons: HashMap<Skeleton, NameKey>,
}

#[derive(Debug)]
struct Held<V> {
    /// The name as its holder typed it.
    name: String,
    skeleton: Skeleton,
    value: V,
}

/// A name could not be taken: the holder of a name that clashes with it has it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the name is held as {holder:?}")]
pub struct Taken {
    /// The holder's name, as its holder typed it.
    pub holder: String,
}

impl<V> Default for NameTable<V> {
    fn default() -> Self {
        NameTable {
            held: HashMap::new(),
            skeletons: HashMap::new(),
        }
    }
}

impl<V> NameTable<V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no name is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Every name held, as its holder typed it, in no order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.held.values().map(|h| h.name.as_str())
    }

    /// The holder `name` designates, with its display form: the holder of the same name
    /// (`teacher` finds `Teacher`), else of a look-alike (`ЅЕRVЕR` finds `SERVER`). Since
    /// no two held names clash, there is at most one of each, and the same name wins.
    pub fn holder(&self, name: &str) -> Option<(&str, &V)> {
        let found = self.held.get(&NameKey::of(name)).or_else(|| {
            let key = self.skeletons.get(&Skeleton::of(name))?;
            self.held.get(key)
        });
        found.map(|h| (h.name.as_str(), &h.value))
    }

    /// Gives `name` to `value`, unless a held name clashes with it.
    pub fn insert(&mut self, name: String, value: V) -> Result<(), Taken> {
        let key = NameKey::of(&name);
        let skeleton = Skeleton::of(&name);
        let holder = self
            .held
            .get(&key)
            .or_else(|| self.skeletons.get(&skeleton).and_then(|k| self.held.get(k)));
        if let Some(h) = holder {
            return Err(Taken {
                holder: h.name.clone(),
            });
        }
        self.skeletons.insert(skeleton.clone(), key.clone());
        self.held.insert(
            key,
            Held {
                name,
                skeleton,
                value,
            },
        );
        Ok(())
    }

    /// Frees `name`, given as it was inserted; returns its value. Its look-alikes are free
    /// again at once.
    pub fn remove(&mut self, name: &str) -> Option<V> {
        let key = NameKey::of(name);
        // Only the holder itself frees the name, never a look-alike given by mistake.
        if self.held.get(&key)?.name != name {
            return None;
        }
        let held = self.held.remove(&key)?;
        self.skeletons.remove(&held.skeleton);
        Some(held.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "alice",
            "Bob_42",
            "élodie",
            "李雷",
            "a",
            "x-y.z",
            "TestClient0",
        ] {
            assert_eq!(validate_name(n), Ok(()), "{n}");
        }
        assert_eq!(validate_name(&"n".repeat(MAX_NAME_CHARS)), Ok(()));
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_name(&"n".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong {
                max: MAX_NAME_CHARS
            })
        );
        assert_eq!(validate_name("a b"), Err(NameError::ForbiddenChar(' ')));
        assert_eq!(validate_name("a\tb"), Err(NameError::ForbiddenChar('\t')));
        assert_eq!(
            validate_name("a\u{1b}[31m"),
            Err(NameError::ForbiddenChar('\u{1b}'))
        );
        assert_eq!(
            validate_name("bob\u{200B}"),
            Err(NameError::ForbiddenChar('\u{200B}'))
        );
        assert_eq!(validate_name("a:b"), Err(NameError::ForbiddenChar(':')));
        assert_eq!(validate_name("a{"), Err(NameError::ForbiddenChar('{')));
        for (n, c) in [
            ("/list", '/'),
            ("!who", '!'),
            ("@bob", '@'),
            ("\\q", '\\'),
            ("#room", '#'),
        ] {
            assert_eq!(validate_name(n), Err(NameError::ForbiddenFirst(c)), "{n}");
        }
    }

    #[test]
    fn reserved_names_in_any_case() {
        for n in ["SERVER", "server", "Everyone", "EVERYONE", "*"] {
            assert!(
                matches!(validate_name(n), Err(NameError::Reserved(_))),
                "{n}"
            );
        }
    }

    #[test]
    fn parse_name_checks_utf8_first() {
        assert_eq!(parse_name(b"\xffab"), Err(NameError::InvalidUtf8));
        assert_eq!(parse_name(b"carol"), Ok("carol".to_string()));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(validate_name(&"é".repeat(MAX_NAME_CHARS)), Ok(()));
    }

    /// Pairs that are the same name: one folded form (case, width, NFC/NFD).
    const SAME_NAME: &[(&str, &str)] = &[
        ("teacher", "Teacher"),
        ("TEACHER", "teacher"),
        ("Ian", "ian"),
        ("\u{e9}lodie", "e\u{301}lodie"), // NFC and NFD
        ("\u{ff33}\u{ff25}\u{ff32}\u{ff36}\u{ff25}\u{ff32}", "SERVER"), // fullwidth
        ("stra\u{df}e", "STRASSE"),       // full case folding: ß is ss
        ("\u{17f}erver", "server"),       // long s folds to s
        ("\u{1d41a}lice", "alice"),       // mathematical bold a (NFKC)
        ("\u{210c}ank", "hank"),          // ℌ: NFKC gives a capital, folded again
        ("\u{3a3}\u{3b1}\u{3c2}", "\u{3c3}\u{3b1}\u{3c3}"), // Greek sigmas
    ];

    /// Pairs that look alike: one skeleton (TR39 confusables).
    const LOOK_ALIKE: &[(&str, &str)] = &[
        ("\u{405}\u{415}RV\u{415}R", "SERVER"), // Cyrillic Ѕ and Е
        ("SERV\u{395}R", "SERVER"),             // Greek capital Epsilon
        ("\u{430}lice", "alice"),               // Cyrillic а
        ("bob1", "bobl"),                       // 1 and l (intended)
        ("I", "l"),
        ("b0b", "bob"),    // 0 and O, and O folds to o
        ("rnary", "mary"), // rn looks like m
        ("\u{ff33}\u{ff25}\u{ff32}\u{ff36}\u{ff25}\u{ff32}", "SERVER"),
    ];

    /// The look-alikes of issue 10 and their kin clash; each pair has the form it was
    /// listed under (PROTOCOL.md §2.2).
    #[test]
    fn look_alikes_clash() {
        for (a, b) in SAME_NAME {
            assert_eq!(NameKey::of(a), NameKey::of(b), "{a:?} and {b:?}");
            assert!(clash(a, b) && clash(b, a), "{a:?} and {b:?}");
        }
        for (a, b) in LOOK_ALIKE {
            assert_eq!(Skeleton::of(a), Skeleton::of(b), "{a:?} and {b:?}");
            assert!(clash(a, b) && clash(b, a), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn different_names_stay_different() {
        for (a, b) in [
            ("alice", "alicia"),
            ("bob", "bobby"),
            ("bob1", "bob2"),
            ("\u{e9}lodie", "elodie"),
            ("\u{674e}\u{96f7}", "\u{674e}"),
            ("x-y.z", "x_y.z"),
            ("ann", "anna"),
            ("TestClient0", "TestClient1"),
        ] {
            assert!(!clash(a, b), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn invisible_and_blank_characters_are_refused() {
        for c in [
            '\u{2800}', // braille blank
            '\u{3164}', // Hangul filler
            '\u{115F}', // Hangul choseong filler
            '\u{1160}',
            '\u{FFA0}',
            '\u{180E}',  // Mongolian vowel separator (Cf)
            '\u{2061}',  // function application (Cf)
            '\u{600}',   // Arabic number sign (Cf)
            '\u{110BD}', // Kaithi number sign (Cf)
            '\u{13430}', // Egyptian hieroglyph joiner (Cf)
            '\u{1BCA0}', // shorthand format letter overlap (Cf)
            '\u{E0041}', // tag latin capital A
            '\u{E0100}', // variation selector 17
            '\u{1D159}', // musical null notehead, drawn blank
        ] {
            assert_eq!(
                validate_name(&c.to_string()),
                Err(NameError::ForbiddenChar(c)),
                "{c:?} alone"
            );
            assert_eq!(
                validate_name(&format!("bob{c}")),
                Err(NameError::ForbiddenChar(c)),
                "{c:?} after bob"
            );
        }
    }

    /// Every default-ignorable code point of the Unicode Character Database is refused
    /// (checked against regex-syntax's copy of the property).
    #[test]
    fn every_default_ignorable_code_point_is_refused() {
        let hir = regex_syntax::parse(r"\p{Default_Ignorable_Code_Point}").unwrap();
        let regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(class)) =
            hir.kind()
        else {
            panic!("not a class: {hir:?}");
        };
        for range in class.ranges() {
            for c in range.start()..=range.end() {
                assert!(is_forbidden_char(c), "{c:?} accepted");
            }
        }
    }

    #[test]
    fn reserved_look_alikes_are_reserved() {
        for n in [
            "\u{405}\u{415}RV\u{415}R",
            "\u{ff33}\u{ff25}\u{ff32}\u{ff36}\u{ff25}\u{ff32}",
            "SERV\u{395}R",
            "\u{17f}erver",
            "\u{395}veryone",
            "every0ne",
            "\u{ff0a}", // fullwidth asterisk
            "\u{2217}", // asterisk operator
        ] {
            assert!(
                matches!(validate_name(n), Err(NameError::Reserved(ref r)) if r == n),
                "{n:?}: {:?}",
                validate_name(n)
            );
        }
    }

    #[test]
    fn each_form_is_its_own_form() {
        for n in [
            "Teacher",
            "\u{405}\u{415}RV\u{415}R",
            "\u{210c}",
            "Ian",
            "stra\u{df}e",
        ] {
            let key = NameKey::of(n);
            assert_eq!(NameKey::of(key.as_str()), key, "{n:?}");
            let skeleton = Skeleton::of(n);
            assert_eq!(Skeleton::of(skeleton.as_str()), skeleton, "{n:?}");
        }
    }

    #[test]
    fn a_table_refuses_a_clash_and_names_the_holder() {
        let mut t = NameTable::new();
        assert_eq!(t.insert("Teacher".into(), 1), Ok(()));
        for n in ["teacher", "TEACHER", "T\u{435}acher", "\u{ff34}eacher"] {
            assert_eq!(
                t.insert(n.into(), 2),
                Err(Taken {
                    holder: "Teacher".into()
                }),
                "{n:?}"
            );
        }
        assert_eq!(t.len(), 1);
        assert_eq!(t.insert("Teachers".into(), 3), Ok(()));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_table_finds_the_one_holder_by_any_look_alike() {
        let mut t = NameTable::new();
        t.insert("Teacher".into(), 1).unwrap();
        t.insert("bobl".into(), 2).unwrap();
        assert_eq!(t.holder("Teacher"), Some(("Teacher", &1)));
        assert_eq!(t.holder("teacher"), Some(("Teacher", &1)));
        assert_eq!(t.holder("T\u{435}acher"), Some(("Teacher", &1)));
        assert_eq!(t.holder("bob1"), Some(("bobl", &2)));
        assert_eq!(t.holder("zed"), None);
    }

    #[test]
    fn a_freed_name_and_its_look_alikes_are_free_again() {
        let mut t = NameTable::new();
        t.insert("Teacher".into(), 1).unwrap();
        assert_eq!(t.remove("teacher"), None, "only the holder frees it");
        assert_eq!(t.remove("Teacher"), Some(1));
        assert!(t.is_empty());
        assert_eq!(t.holder("Teacher"), None);
        assert_eq!(t.insert("T\u{435}acher".into(), 2), Ok(()));
        assert_eq!(t.names().collect::<Vec<_>>(), ["T\u{435}acher"]);
    }
}
