//! Subscriber numbers normalized to E.164 (ITU-T E.164 §6: at most 15 digits, country code first).

use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum number of digits of an international public telecommunication number
/// (ITU-T E.164 (11/2010) §6.1: "15 digits").
pub const MAX_DIGITS: usize = 15;

/// Maximum length of a country code (ITU-T E.164 §6.2.1: one to three digits).
pub const MAX_COUNTRY_CODE_DIGITS: usize = 3;

/// Why a subscriber id could not be normalized to E.164.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum E164Error {
    /// No digit at all.
    #[error("empty subscriber number")]
    Empty,
    /// More than 15 digits after normalization.
    #[error("more than 15 digits")]
    TooLong,
    /// A character that is neither a digit nor an allowed separator.
    #[error("invalid character at byte {0}")]
    InvalidCharacter(usize),
    /// A national number and no default country code to complete it.
    #[error("national number without a default country code")]
    NoCountryCode,
    /// A country code that is not one to three digits (configuration error).
    #[error("invalid country code")]
    InvalidCountryCode,
}

/// A country code: one to three decimal digits (ITU-T E.164 §6.2.1), such as `44` or `358`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode {
    digits: [u8; MAX_COUNTRY_CODE_DIGITS],
    len: u8,
}

impl CountryCode {
    /// Parses `"44"` or `"+44"`.
    ///
    /// # Errors
    /// [`E164Error::InvalidCountryCode`] unless the text is one to three ASCII digits
    /// (after an optional `+`).
    pub fn parse(text: &str) -> Result<Self, E164Error> {
        let t = text.strip_prefix('+').unwrap_or(text);
        if t.is_empty()
            || t.len() > MAX_COUNTRY_CODE_DIGITS
            || !t.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(E164Error::InvalidCountryCode);
        }
        let mut digits = [0u8; MAX_COUNTRY_CODE_DIGITS];
        for (d, b) in digits.iter_mut().zip(t.bytes()) {
            *d = b - b'0';
        }
        let len = u8::try_from(t.len()).map_err(|_| E164Error::InvalidCountryCode)?;
        Ok(Self { digits, len })
    }

    /// A country code from digit values (each 0..=9), one to three of them.
    ///
    /// # Errors
    /// [`E164Error::InvalidCountryCode`] otherwise.
    pub fn from_digits(d: &[u8]) -> Result<Self, E164Error> {
        if d.is_empty() || d.len() > MAX_COUNTRY_CODE_DIGITS || d.iter().any(|&x| x > 9) {
            return Err(E164Error::InvalidCountryCode);
        }
        let mut digits = [0u8; MAX_COUNTRY_CODE_DIGITS];
        digits[..d.len()].copy_from_slice(d);
        let len = u8::try_from(d.len()).map_err(|_| E164Error::InvalidCountryCode)?;
        Ok(Self { digits, len })
    }

    /// The digits (each 0..=9).
    #[must_use]
    pub fn digits(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// A dense index in `0..1110` (one slot per 1-, 2- or 3-digit string), used by the registry's
    /// country-code table.
    #[must_use]
    pub fn slot(&self) -> usize {
        let mut v = 0usize;
        for &d in self.digits() {
            v = v * 10 + usize::from(d);
        }
        match self.len {
            1 => v,
            2 => 10 + v,
            _ => 110 + v,
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.digits() {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode(+{self})")
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How national and international dialling forms are turned into E.164.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// International call prefix to strip (`"00"` in most of the world, ITU-T E.164 Annex A).
    pub international_prefix: &'static str,
    /// National (trunk) prefix to strip before adding the default country code (`"0"`).
    pub national_prefix: &'static str,
    /// Country code added to national numbers; `None` refuses national numbers.
    pub default_country_code: Option<CountryCode>,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            international_prefix: "00",
            national_prefix: "0",
            default_country_code: None,
        }
    }
}

/// A subscriber number in E.164 form: country code followed by the national number, 1 to 15
/// digits, stored without the `+`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct E164 {
    digits: [u8; MAX_DIGITS],
    len: u8,
}

impl E164 {
    /// Normalizes a subscriber id written as `+44 20 7946 0958`, `0044-20-79460958`,
    /// `tel:+442079460958` or, with a default country code, `020 7946 0958`.
    ///
    /// Spaces, `-`, `.`, `(` and `)` are visual separators (RFC 3966 §5.1.1) and are dropped.
    ///
    /// # Errors
    /// [`E164Error`] on an empty number, a foreign character, more than 15 digits, or a national
    /// number without a default country code.
    pub fn normalize(input: &str, opts: &NormalizeOptions) -> Result<Self, E164Error> {
        let body = input.trim();
        let offset = input.len() - input.trim_start().len();
        let (body, offset) = match body.strip_prefix("tel:") {
            Some(rest) => (rest, offset + 4),
            None => (body, offset),
        };
        // Collect digits; remember whether the number was written with a leading '+'.
        let mut raw = [0u8; 32];
        let mut n = 0usize;
        let mut plus = false;
        for (i, b) in body.bytes().enumerate() {
            match b {
                b'0'..=b'9' => {
                    if n == raw.len() {
                        return Err(E164Error::TooLong);
                    }
                    raw[n] = b - b'0';
                    n += 1;
                }
                b'+' if n == 0 && !plus => plus = true,
                b' ' | b'-' | b'.' | b'(' | b')' => {}
                _ => return Err(E164Error::InvalidCharacter(offset + i)),
            }
        }
        let digits = &raw[..n];
        if digits.is_empty() {
            return Err(E164Error::Empty);
        }
        let intl = digit_string(opts.international_prefix);
        let natl = digit_string(opts.national_prefix);
        if plus {
            return Self::from_digits(digits);
        }
        if let Some(rest) = strip(digits, &intl) {
            return Self::from_digits(rest);
        }
        let Some(cc) = opts.default_country_code else {
            return Err(E164Error::NoCountryCode);
        };
        let national = strip(digits, &natl).unwrap_or(digits);
        let mut full = [0u8; 40];
        let ccd = cc.digits();
        let total = ccd.len() + national.len();
        if total > MAX_DIGITS {
            return Err(E164Error::TooLong);
        }
        full[..ccd.len()].copy_from_slice(ccd);
        full[ccd.len()..total].copy_from_slice(national);
        Self::from_digits(&full[..total])
    }

    /// Builds a number from decimal digit values (each 0..=9), country code first.
    ///
    /// # Errors
    /// [`E164Error::Empty`], [`E164Error::TooLong`], or [`E164Error::InvalidCharacter`] for a value
    /// above 9.
    pub fn from_digits(d: &[u8]) -> Result<Self, E164Error> {
        if d.is_empty() {
            return Err(E164Error::Empty);
        }
        if d.len() > MAX_DIGITS {
            return Err(E164Error::TooLong);
        }
        if let Some(i) = d.iter().position(|&x| x > 9) {
            return Err(E164Error::InvalidCharacter(i));
        }
        let mut digits = [0u8; MAX_DIGITS];
        digits[..d.len()].copy_from_slice(d);
        let len = u8::try_from(d.len()).map_err(|_| E164Error::TooLong)?;
        Ok(Self { digits, len })
    }

    /// Parses the canonical form `+<digits>` (what [`Display`](fmt::Display) prints).
    ///
    /// # Errors
    /// [`E164Error`] when the text is not `+` followed by 1 to 15 digits.
    pub fn parse(text: &str) -> Result<Self, E164Error> {
        let Some(rest) = text.strip_prefix('+') else {
            return Err(E164Error::NoCountryCode);
        };
        let mut buf = [0u8; MAX_DIGITS];
        let mut n = 0usize;
        for (i, b) in rest.bytes().enumerate() {
            if !b.is_ascii_digit() {
                return Err(E164Error::InvalidCharacter(i + 1));
            }
            if n == MAX_DIGITS {
                return Err(E164Error::TooLong);
            }
            buf[n] = b - b'0';
            n += 1;
        }
        Self::from_digits(&buf[..n])
    }

    /// The digits, country code first, each 0..=9.
    #[must_use]
    pub fn digits(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }
}

fn digit_string(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

fn strip<'a>(digits: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if prefix.is_empty() {
        return None;
    }
    digits.strip_prefix(prefix)
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("+")?;
        for d in self.digits() {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({self})")
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn uk() -> NormalizeOptions {
        NormalizeOptions {
            default_country_code: Some(CountryCode::parse("44").unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn forms_normalize_to_the_same_number() {
        let want = E164::parse("+442079460958").unwrap();
        for s in [
            "+44 20 7946 0958",
            "0044-20-7946-0958",
            "tel:+44.20.7946.0958",
            "(020) 7946 0958",
            " 02079460958 ",
        ] {
            assert_eq!(E164::normalize(s, &uk()).unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "+442079460958");
    }

    #[test]
    fn errors_are_precise() {
        let o = NormalizeOptions::default();
        assert_eq!(E164::normalize("", &o), Err(E164Error::Empty));
        assert_eq!(E164::normalize("+ -", &o), Err(E164Error::Empty));
        assert_eq!(
            E164::normalize("+44x", &o),
            Err(E164Error::InvalidCharacter(3))
        );
        assert_eq!(
            E164::normalize("+1234567890123456", &o),
            Err(E164Error::TooLong)
        );
        assert_eq!(
            E164::normalize("020 7946", &o),
            Err(E164Error::NoCountryCode)
        );
        assert_eq!(
            E164::normalize("++44", &o),
            Err(E164Error::InvalidCharacter(1))
        );
        assert_eq!(E164::parse("44"), Err(E164Error::NoCountryCode));
        assert_eq!(
            CountryCode::parse("1234"),
            Err(E164Error::InvalidCountryCode)
        );
    }

    #[test]
    fn country_code_slots_are_dense_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for len in 1..=3 {
            for v in 0..10usize.pow(len) {
                let s = format!("{v:0width$}", width = len as usize);
                let cc = CountryCode::parse(&s).unwrap();
                assert!(cc.slot() < 1110);
                assert!(seen.insert(cc.slot()));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn normalize_never_panics(s in "\\PC{0,40}") {
            let _ = E164::normalize(&s, &uk());
        }

        #[test]
        fn display_parse_round_trip(d in proptest::collection::vec(0u8..10, 1..=15)) {
            let n = E164::from_digits(&d).unwrap();
            proptest::prop_assert_eq!(E164::parse(&n.to_string()).unwrap(), n);
        }
    }
}
