//! [`PiiGuard`] and [`redact_pii`]: e-mail addresses, phone numbers, payment cards and IBANs,
//! found and replaced by `[REDACTED:kind]`.
//!
//! Each kind has one regex that finds candidates; cards and IBANs are then checked (Luhn,
//! ISO 13616 mod 97 and the country's length), phone numbers by their digit count and what
//! surrounds them, so that dates, years, order numbers and the digits of an IBAN or a card are
//! left alone. Where two kinds claim the same text, the first of e-mail, IBAN, card and phone
//! wins.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::{Stages, counted};
use crate::governance::guard::{Checked, GuardError, Guardrail, Stage, Verdict};

/// A kind of personal data [`PiiGuard`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PiiKind {
    /// An e-mail address (`alice@example.com`).
    Email,
    /// A phone number: international (`+44 20 7946 0958`) or a common national form with
    /// separators (`(415) 555-0132`, `020 7946 0958`), 8 to 15 digits.
    Phone,
    /// A payment card number: 13 to 19 digits, in groups separated by spaces or dashes,
    /// that pass the Luhn check.
    Card,
    /// An IBAN that passes the ISO 13616 mod-97 check and has its country's length.
    Iban,
}

impl PiiKind {
    /// Every kind, in the order they win when two claim the same text.
    pub const ALL: [Self; 4] = [Self::Email, Self::Iban, Self::Card, Self::Phone];

    /// The kind as a word: `email`, `phone`, `card`, `iban`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Card => "card",
            Self::Iban => "iban",
        }
    }

    /// What replaces it: `[REDACTED:email]`, `[REDACTED:phone]`, `[REDACTED:card]`, `[REDACTED:iban]`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "[REDACTED:email]",
            Self::Phone => "[REDACTED:phone]",
            Self::Card => "[REDACTED:card]",
            Self::Iban => "[REDACTED:iban]",
        }
    }

    fn nouns(self) -> (&'static str, &'static str) {
        match self {
            Self::Email => ("email", "emails"),
            Self::Phone => ("phone number", "phone numbers"),
            Self::Card => ("card", "cards"),
            Self::Iban => ("IBAN", "IBANs"),
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Email => 1,
            Self::Phone => 2,
            Self::Card => 4,
            Self::Iban => 8,
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many of each kind were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PiiCounts {
    /// E-mail addresses.
    pub email: usize,
    /// Phone numbers.
    pub phone: usize,
    /// Payment card numbers.
    pub card: usize,
    /// IBANs.
    pub iban: usize,
}

impl PiiCounts {
    /// How many of `kind`.
    pub fn get(&self, kind: PiiKind) -> usize {
        match kind {
            PiiKind::Email => self.email,
            PiiKind::Phone => self.phone,
            PiiKind::Card => self.card,
            PiiKind::Iban => self.iban,
        }
    }

    /// How many in all.
    pub fn total(&self) -> usize {
        self.email + self.phone + self.card + self.iban
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    fn add(&mut self, kind: PiiKind) {
        match kind {
            PiiKind::Email => self.email += 1,
            PiiKind::Phone => self.phone += 1,
            PiiKind::Card => self.card += 1,
            PiiKind::Iban => self.iban += 1,
        }
    }
}

/// `1 email, 2 cards` (`nothing` when empty): counts and kinds, never values.
impl fmt::Display for PiiCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in [PiiKind::Email, PiiKind::Phone, PiiKind::Card, PiiKind::Iban] {
            let n = self.get(kind);
            if n == 0 {
                continue;
            }
            let (one, many) = kind.nouns();
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            f.write_str(&counted(n, one, many))?;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// Finds and redacts personal data: e-mail addresses, phone numbers, payment cards (Luhn-valid)
/// and IBANs (mod-97-valid), replacing each with `[REDACTED:email]`, `[REDACTED:phone]`,
/// `[REDACTED:card]` or `[REDACTED:iban]`.
///
/// By default it looks for every kind at every stage and rewrites the text, with a note such as
/// `1 email, 2 cards redacted`; [`block`](Self::block) stops the text instead.
///
/// ```
/// use loomflow::governance::{PiiGuard, PiiKind, Stage};
///
/// let guard = PiiGuard::new().only(&[PiiKind::Email, PiiKind::Card]).stages(&[Stage::Input]);
/// # let _ = guard;
/// ```
///
/// Detection is pattern-based: it finds the common written forms, not every one (a phone number
/// written without separators and without `+` is not told apart from an order number), and a
/// Luhn-valid or mod-97-valid number that is not a card or an IBAN is redacted too.
#[derive(Debug, Clone, Copy)]
pub struct PiiGuard {
    kinds: Kinds,
    stages: Stages,
    block: bool,
}

impl Default for PiiGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiGuard {
    /// Every kind, every stage, redacting.
    pub fn new() -> Self {
        Self { kinds: Kinds::ALL, stages: Stages::ALL, block: false }
    }

    /// Looks for these kinds only (none at all for an empty slice).
    #[must_use]
    pub fn only(mut self, kinds: &[PiiKind]) -> Self {
        self.kinds = Kinds::of(kinds);
        self
    }

    /// Looks at these stages only.
    #[must_use]
    pub fn stages(mut self, stages: &[Stage]) -> Self {
        self.stages = Stages::of(stages);
        self
    }

    /// Blocks a text with personal data instead of redacting it; the reason names the kinds
    /// found and how many, never the values.
    #[must_use]
    pub fn block(mut self) -> Self {
        self.block = true;
        self
    }

    /// Redacts the kinds this guard looks for in `text`.
    pub fn redact<'t>(&self, text: &'t str) -> (Cow<'t, str>, PiiCounts) {
        redact(text, self.kinds)
    }
}

#[async_trait::async_trait]
impl Guardrail for PiiGuard {
    fn name(&self) -> &str {
        "pii"
    }

    fn applies_to(&self, stage: Stage) -> bool {
        self.stages.contains(stage)
    }

    async fn check(&self, checked: Checked<'_>) -> Result<Verdict, GuardError> {
        let Some(patterns) = patterns() else {
            return Err(GuardError::new("the built-in PII patterns did not compile (a bug in Loom; please report it)"));
        };
        let (text, counts) = patterns.redact(checked.text, self.kinds);
        Ok(match text {
            Cow::Borrowed(_) => Verdict::Pass,
            Cow::Owned(_) if self.block => {
                Verdict::Block { reason: format!("the text contains personal data ({counts})") }
            }
            Cow::Owned(text) => Verdict::Rewrite { text, note: format!("{counts} redacted") },
        })
    }
}

/// Redacts every kind of personal data [`PiiGuard`] finds in `text`: e-mail addresses, phone
/// numbers, Luhn-valid card numbers and mod-97-valid IBANs. The text is borrowed back when
/// there is nothing to redact.
///
/// ```
/// use loomflow::governance::redact_pii;
///
/// let (text, counts) = redact_pii("Mail alice@example.com, card 4111 1111 1111 1111.");
/// assert_eq!(text, "Mail [REDACTED:email], card [REDACTED:card].");
/// assert_eq!(counts.to_string(), "1 email, 1 card");
/// ```
pub fn redact_pii(text: &str) -> (Cow<'_, str>, PiiCounts) {
    redact(text, Kinds::ALL)
}

fn redact(text: &str, kinds: Kinds) -> (Cow<'_, str>, PiiCounts) {
    match patterns() {
        Some(patterns) => patterns.redact(text, kinds),
        // Unreachable (the patterns are constants, compiled in the tests): fail closed.
        None if text.is_empty() || kinds == Kinds(0) => (Cow::Borrowed(text), PiiCounts::default()),
        None => (Cow::Owned("[REDACTED]".to_owned()), PiiCounts::default()),
    }
}

/// A set of kinds, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kinds(u8);

impl Kinds {
    const ALL: Self = Self(0b1111);

    fn of(kinds: &[PiiKind]) -> Self {
        Self(kinds.iter().fold(0, |bits, k| bits | k.bit()))
    }

    fn has(self, kind: PiiKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

const EMAIL: &str = r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\p{L}{2,}";

const PHONE: &str = concat!(
    // +1 415-555-0132, +44 20 7946 0958, +1 (415) 555 0132, +442079460958
    r"\+[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})){2,6}",
    // (415) 555-0132, (020) 7946 0958
    r"|\([0-9]{2,5}\)[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}",
    // 415-555-0132, 415.555.0132, 415 555 0132
    r"|\b[0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}",
    // 020 7946 0958, 030/1234567, 0171-1234567
    r"|\b0[0-9]{1,4}[ ./-][0-9]{3,4}[ .-]?[0-9]{3,4}",
    // 06 12 34 56 78
    r"|\b0[0-9](?:[ .-][0-9]{2}){4}",
);

/// A run of digit groups with single spaces or dashes between them; the card windows are
/// found inside it.
const CARD_RUN: &str = r"[0-9]+(?:[ -][0-9]+)*";

/// Country code, check digits, then groups of four (spaced or not) and a last shorter group.
const IBAN: &str = r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b";

struct Patterns {
    email: Regex,
    phone: Regex,
    card: Regex,
    iban: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    Some(Patterns {
        email: Regex::new(EMAIL).ok()?,
        phone: Regex::new(PHONE).ok()?,
        card: Regex::new(CARD_RUN).ok()?,
        iban: Regex::new(IBAN).ok()?,
    })
});

fn patterns() -> Option<&'static Patterns> {
    PATTERNS.as_ref()
}

impl Patterns {
    fn redact<'t>(&self, text: &'t str, kinds: Kinds) -> (Cow<'t, str>, PiiCounts) {
        let mut found = Found::default();
        for kind in PiiKind::ALL {
            if !kinds.has(kind) {
                continue;
            }
            match kind {
                PiiKind::Email => {
                    for m in self.email.find_iter(text) {
                        found.add(m.start(), m.end(), kind);
                    }
                }
                PiiKind::Iban => {
                    for m in self.iban.find_iter(text) {
                        if let Some(len) = iban_len(m.as_str()) {
                            found.add(m.start(), m.start() + len, kind);
                        }
                    }
                }
                PiiKind::Card => {
                    for m in self.card.find_iter(text) {
                        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                        if digits >= 13 && stands_alone(text, m.start(), m.end(), true) {
                            for (a, b) in card_windows(m.as_str()) {
                                found.add(m.start() + a, m.start() + b, kind);
                            }
                        }
                    }
                }
                PiiKind::Phone => {
                    for m in self.phone.find_iter(text) {
                        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                        let own_plus = m.as_str().starts_with('+');
                        if (8..=15).contains(&digits) && stands_alone(text, m.start(), m.end(), !own_plus) {
                            found.add(m.start(), m.end(), kind);
                        }
                    }
                }
            }
        }
        found.apply(text)
    }
}

/// Whether the number at `start..end` of `text` is not part of a word or of a longer number:
/// no letter or digit touches it, no `+` precedes it, and (when `strict`) no digit comes
/// right before a separator in front of it (`DE89 3704 ...`, `12.5`).
fn stands_alone(text: &str, start: usize, end: usize, strict: bool) -> bool {
    let mut before = text[..start].chars().rev();
    let mut after = text[end..].chars();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    match before.next() {
        Some(c) if word(c) || c == '+' => return false,
        Some(' ' | '-' | '.' | ',' | '/') if strict && before.next().is_some_and(|c| c.is_ascii_digit()) => {
            return false;
        }
        _ => {}
    }
    match after.next() {
        Some(c) if word(c) => false,
        // A decimal part: `4111111111111111.5` is a number, not a card.
        Some('.' | ',') => !after.next().is_some_and(|c| c.is_ascii_digit()),
        _ => true,
    }
}

/// The card numbers in a run of digit groups, as byte ranges of the run: at each group, the
/// longest window of whole groups with a card's shape and 13 to 19 Luhn-valid digits.
fn card_windows(run: &str) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut start = None;
    for (i, b) in run.bytes().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                groups.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push((s, run.len()));
    }
    let mut windows = Vec::new();
    let mut s = 0;
    while s < groups.len() {
        let mut best = None;
        let mut digits = 0;
        for e in s..groups.len() {
            digits += groups[e].1 - groups[e].0;
            if digits > 19 {
                break;
            }
            let window = &groups[s..=e];
            if digits >= 13
                && card_shape(window)
                && luhn(window.iter().rev().flat_map(|&(a, b)| run[a..b].bytes().rev()))
            {
                best = Some(e);
            }
        }
        match best {
            Some(e) => {
                windows.push((groups[s].0, groups[e].1));
                s = e + 1;
            }
            None => s += 1,
        }
    }
    windows
}

/// One group of digits, fours with a last group of one to four (4-4-4-4, 4-4-4-4-3), or
/// 4-6-5 and 4-6-4 (American Express, Diners).
fn card_shape(groups: &[(usize, usize)]) -> bool {
    let len = |&(a, b): &(usize, usize)| b - a;
    match groups {
        [_] => true,
        [a, b, c] if len(a) == 4 && len(b) == 6 && matches!(len(c), 4 | 5) => true,
        [init @ .., last] => init.iter().all(|g| len(g) == 4) && (1..=4).contains(&len(last)),
        [] => false,
    }
}

/// The Luhn check, over the digits from the last to the first.
fn luhn(digits_reversed: impl Iterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits_reversed.enumerate() {
        let d = u32::from(b - b'0');
        sum += if i % 2 == 1 {
            let twice = d * 2;
            if twice > 9 { twice - 9 } else { twice }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

/// The IBAN lengths of the common countries (the EU's, the EEA's, GB, CH and a few more);
/// others are checked against the generic 15 to 34.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TR", 26),
];

/// The length in bytes of the valid IBAN that `candidate` begins with: the whole candidate, or
/// a prefix of it ending before a space (a word of four capitals after an IBAN looks like one
/// more group).
fn iban_len(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        let head = &candidate[..end];
        if iban_valid(head) {
            return Some(end);
        }
        end = head.rfind(' ')?;
    }
}

/// Whether `s` (spaces allowed) is an IBAN: its country's length, and mod 97 of the number it
/// spells (the first four characters moved to the end, letters as 10 to 35) is 1.
fn iban_valid(s: &str) -> bool {
    let compact = || s.bytes().filter(|&b| b != b' ');
    let len = compact().count();
    let Some(country) = s.get(..2) else { return false };
    let length_ok = match IBAN_LENGTHS.iter().find(|(c, _)| *c == country) {
        Some(&(_, expected)) => len == expected,
        None => (15..=34).contains(&len),
    };
    if !length_ok {
        return false;
    }
    let mut rest = 0u32;
    for b in compact().skip(4).chain(compact().take(4)) {
        rest = match b {
            b'0'..=b'9' => (rest * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rest * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rest == 1
}

/// The spans found so far, disjoint, by start; a span that overlaps one found before is dropped.
#[derive(Default)]
struct Found(BTreeMap<usize, (usize, PiiKind)>);

impl Found {
    fn add(&mut self, start: usize, end: usize, kind: PiiKind) {
        // The spans are disjoint, so only the last one starting before `end` can overlap.
        if let Some((_, &(prev_end, _))) = self.0.range(..end).next_back()
            && prev_end > start
        {
            return;
        }
        self.0.insert(start, (end, kind));
    }

    fn apply(self, text: &str) -> (Cow<'_, str>, PiiCounts) {
        let mut counts = PiiCounts::default();
        if self.0.is_empty() {
            return (Cow::Borrowed(text), counts);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, (end, kind)) in self.0 {
            out.push_str(&text[at..start]);
            out.push_str(kind.placeholder());
            counts.add(kind);
            at = end;
        }
        out.push_str(&text[at..]);
        (Cow::Owned(out), counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RunContext;
    use crate::id::UserId;

    fn kinds_in(text: &str) -> String {
        redact_pii(text).1.to_string()
    }

    #[test]
    fn the_patterns_compile() {
        assert!(patterns().is_some());
    }

    #[test]
    fn cards_are_redacted_only_when_luhn_valid() {
        for card in
            ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "4111111111111111", "3782 822463 10005"]
        {
            let text = format!("pay with {card}, thanks");
            assert_eq!(redact_pii(&text).0, "pay with [REDACTED:card], thanks", "{card}");
        }
        for not_card in ["4111 1111 1111 1112", "5500-0000-0000-0005", "1234567890123", "41111111111111111111111"] {
            let text = format!("ref {not_card}.");
            assert_eq!(redact_pii(&text).0, text, "{not_card}");
        }
        // The card inside a longer run of groups, the year after it untouched.
        assert_eq!(redact_pii("card 4111 1111 1111 1111 2031").0, "card [REDACTED:card] 2031");
        assert_eq!(redact_pii("pi is 3.4111111111111111").0, "pi is 3.4111111111111111", "a decimal part");
    }

    #[test]
    fn ibans_are_redacted_only_when_mod_97_valid() {
        for iban in [
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "GB82 WEST 1234 5698 7654 32",
            "CH9300762011623852957",
            "NO9386011117947",
        ] {
            let text = format!("IBAN: {iban}.");
            assert_eq!(redact_pii(&text).0, "IBAN: [REDACTED:iban].", "{iban}");
        }
        for not_iban in
            ["DE89 3704 0044 0532 0130 01", "GB82WEST12345698765433", "DE89 3704 0044 0532 0130", "XX00 0000 0000 0000"]
        {
            let text = format!("IBAN: {not_iban} ok");
            assert_eq!(redact_pii(&text).0, text, "{not_iban}");
        }
        // A capitalised word after the last group is not part of it.
        let (text, counts) = redact_pii("ES91 2100 0418 4502 0005 1332 BANK");
        assert_eq!((text.as_ref(), counts.iban), ("[REDACTED:iban] BANK", 1));
    }

    #[test]
    fn emails_are_found_among_punctuation() {
        let (text, counts) =
            redact_pii("Write to alice@example.com, (bob.smith+tag@mail.example.co.uk) or <carol_o@x-y.io>.");
        assert_eq!(text, "Write to [REDACTED:email], ([REDACTED:email]) or <[REDACTED:email]>.");
        assert_eq!(counts.email, 3);
        assert_eq!(redact_pii("no at sign here, nor user@localhost").1.email, 0);
    }

    #[test]
    fn phone_numbers_are_found_and_dates_are_not() {
        for phone in [
            "+1 415-555-0132",
            "+44 20 7946 0958",
            "(415) 555-0132",
            "+1 (415) 555 0132",
            "+442079460958",
            "415.555.0132",
            "020 7946 0958",
            "06 12 34 56 78",
        ] {
            let text = format!("Call {phone} today.");
            assert_eq!(redact_pii(&text).0, "Call [REDACTED:phone] today.", "{phone}");
        }
        for not_phone in [
            "2024-01-15",
            "15.01.2024",
            "01/02/2024",
            "in 1999 and 2024",
            "order #123456789",
            "INV-2024-00123",
            "ORD-55512345",
            "v1.2.3",
            "12:30:45",
            "+12 34",
            "2024-01-15T10:30:00Z",
        ] {
            let text = format!("See {not_phone} here.");
            assert_eq!(redact_pii(&text).0, text, "{not_phone}");
        }
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(kinds_in("a@b.com c@d.org 4111 1111 1111 1111"), "2 emails, 1 card");
        assert_eq!(kinds_in("+44 20 7946 0958, DE89 3704 0044 0532 0130 00"), "1 phone number, 1 IBAN");
        assert_eq!(kinds_in("nothing"), "nothing");
        let counts = redact_pii("4111 1111 1111 1111 / 5500-0000-0000-0004").1;
        assert_eq!((counts.get(PiiKind::Card), counts.total(), counts.is_empty()), (2, 2, false));
    }

    #[test]
    fn nothing_found_borrows_the_text() {
        assert!(matches!(redact_pii("plain words").0, Cow::Borrowed(_)));
        assert!(matches!(redact_pii("").0, Cow::Borrowed(_)));
    }

    #[test]
    fn overlapping_kinds_go_to_the_first() {
        // The digits of an e-mail's local part are not a card.
        assert_eq!(redact_pii("4111111111111111@example.com").0, "[REDACTED:email]");
        // The digits of a valid IBAN are not a card or a phone number.
        assert_eq!(redact_pii("DE89 3704 0044 0532 0130 00").1.total(), 1);
    }

    #[test]
    fn only_some_kinds() {
        let guard = PiiGuard::new().only(&[PiiKind::Card]);
        let (text, counts) = guard.redact("alice@example.com 4111 1111 1111 1111");
        assert_eq!(text, "alice@example.com [REDACTED:card]");
        assert_eq!(counts.card, 1);
        assert!(matches!(PiiGuard::new().only(&[]).redact("alice@example.com").0, Cow::Borrowed(_)));
    }

    #[tokio::test]
    async fn the_guard_rewrites_or_blocks() -> Result<(), Box<dyn std::error::Error>> {
        let ctx = RunContext::new(UserId::new("alice")?);
        let text = "mail alice@example.com, cards 4111 1111 1111 1111 and 378282246310005";
        let checked = Checked::new(Stage::Input, text, &ctx);
        let verdict = PiiGuard::new().check(checked).await?;
        let Verdict::Rewrite { text: rewritten, note } = verdict else { panic!("expected a rewrite, got {verdict:?}") };
        assert_eq!(rewritten, "mail [REDACTED:email], cards [REDACTED:card] and [REDACTED:card]");
        assert_eq!(note, "1 email, 2 cards redacted");

        let verdict = PiiGuard::new().block().check(checked).await?;
        let Verdict::Block { reason } = verdict else { panic!("expected a block, got {verdict:?}") };
        assert_eq!(reason, "the text contains personal data (1 email, 2 cards)");
        assert!(!reason.contains("alice") && !reason.contains("4111"));

        let clean = Checked::new(Stage::Output, "nothing personal", &ctx);
        assert_eq!(PiiGuard::new().check(clean).await?, Verdict::Pass);

        let guard = PiiGuard::new().stages(&[Stage::Input, Stage::ToolResult]);
        assert!(guard.applies_to(Stage::Input) && guard.applies_to(Stage::ToolResult));
        assert!(!guard.applies_to(Stage::Output));
        assert_eq!(guard.name(), "pii");
        Ok(())
    }

    #[test]
    fn luhn_and_mod_97() {
        let rev = |s: &'static str| s.bytes().rev();
        assert!(luhn(rev("79927398713")));
        assert!(!luhn(rev("79927398710")));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 3"));
        assert!(!iban_valid("G"));
    }

    #[test]
    fn scanning_is_linear() {
        // Long runs of digit groups and near-miss addresses, each scanned once.
        let text = "1 ".repeat(50_000) + &"a@".repeat(50_000) + &"+1 ".repeat(50_000) + &"DE89 ".repeat(50_000);
        let started = std::time::Instant::now();
        let _ = redact_pii(&text);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }
}
