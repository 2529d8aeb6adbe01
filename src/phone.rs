//! Phone numbers: from any human spelling to the dial string FoneStorm wants.
//!
//! FoneStorm ignores punctuation, dials US numbers as `1` + 10 digits and
//! international ones as `011` + country code + number. Numbers are checked
//! against libphonenumber's metadata (the `phonenumber` crate), so a number
//! that cannot exist is refused before anyone is called.

use phonenumber::country::Id;
use std::fmt;

/// Why a phone number was refused. The display form is a complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    /// Too few or too many digits to be a phone number at all.
    DigitCount(String),
    /// Letters or other characters a dial string cannot hold.
    Characters(String),
    /// The right shape, but no such number can exist.
    Invalid(String),
    /// A speed dial that is not 1 to 6 digits.
    SpeedDial(String),
    /// A caller ID that is not a 10-digit North American number.
    CallerId(String),
    /// A `defaults.country` that is not an ISO 3166 alpha-2 code.
    Country(String),
    /// An emergency number: a pager must never ring emergency services.
    Emergency(String),
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::DigitCount(s) => {
                write!(f, "{s:?} is not a phone number (7 to 15 digits)")
            }
            PhoneError::Characters(s) => write!(
                f,
                "{s:?} is not a phone number (only digits, spaces, `+`, `-`, `.`, `(` and `)`)"
            ),
            PhoneError::Invalid(s) => write!(f, "{s:?} cannot be a real phone number"),
            PhoneError::SpeedDial(s) => write!(f, "{s:?} is not a speed dial (1 to 6 digits)"),
            PhoneError::CallerId(s) => write!(
                f,
                "{s:?} is not a FoneNumber (a 10-digit North American number)"
            ),
            PhoneError::Country(s) => write!(f, "{s:?} is not an ISO 3166 country code"),
            PhoneError::Emergency(s) => write!(
                f,
                "{s:?} is an emergency number: callbook never calls emergency services"
            ),
        }
    }
}

impl std::error::Error for PhoneError {}

/// The country used to read numbers written without a country code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Country(Id);

impl Country {
    /// Reads an ISO 3166 alpha-2 code such as `US` or `DE`.
    pub fn parse(code: &str) -> Result<Country, PhoneError> {
        code.parse::<Id>()
            .map(Country)
            .map_err(|_| PhoneError::Country(code.to_string()))
    }
}

impl Default for Country {
    fn default() -> Self {
        Country(Id::US)
    }
}

/// Normalises `input` to a FoneStorm dial string.
///
/// `+1 (321) 499-1008` → `13214991008`; `+49 89 4567898` → `01149894567898`;
/// `(321) 499-1008` with `country: US` → `13214991008`.
pub fn dial_string(input: &str, country: Country) -> Result<String, PhoneError> {
    check_characters(input)?;
    if is_emergency(input, country) {
        return Err(PhoneError::Emergency(input.to_string()));
    }
    let digits = input.bytes().filter(u8::is_ascii_digit).count();
    // `011` + up to 15 digits is an E.164 number dialled internationally.
    if !(7..=18).contains(&digits) {
        return Err(PhoneError::DigitCount(input.to_string()));
    }
    // Numbers written internationally are parsed without a default region:
    // with one, the `phonenumber` crate strips that region's national prefix
    // from the foreign number (`+33 1 42 68 53 00` would lose its `1`).
    let parsed = match international_form(input, country) {
        Some(plus) => phonenumber::parse(None, plus),
        None => phonenumber::parse(Some(country.0), input),
    };
    let number = parsed.map_err(|_| PhoneError::Invalid(input.to_string()))?;
    if !phonenumber::is_valid(&number) {
        return Err(PhoneError::Invalid(input.to_string()));
    }
    let code = number.code().value();
    let national = number.format().mode(phonenumber::Mode::E164).to_string();
    let e164 = national.trim_start_matches('+');
    if code == 1 {
        Ok(e164.to_string())
    } else {
        Ok(format!("011{e164}"))
    }
}

/// `+` and the digits, when `input` is written with `+` or the country's exit code (`011`).
fn international_form(input: &str, country: Country) -> Option<String> {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    if input.trim_start().starts_with('+') {
        return Some(format!("+{digits}"));
    }
    let id: &str = country.0.as_ref();
    let meta = phonenumber::metadata::DATABASE.by_id(id)?;
    let exit_code = meta.international_prefix()?.find(&digits)?;
    (exit_code.start() == 0 && exit_code.end() < digits.len())
        .then(|| format!("+{}", &digits[exit_code.end()..]))
}

/// Checks a speed dial: 1 to 6 digits, dialled as written, and no emergency number.
pub fn speed_dial(input: &str, country: Country) -> Result<String, PhoneError> {
    if is_emergency(input, country) {
        return Err(PhoneError::Emergency(input.to_string()));
    }
    if (1..=6).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_digit()) {
        Ok(input.to_string())
    } else {
        Err(PhoneError::SpeedDial(input.to_string()))
    }
}

/// Emergency numbers refused whatever the playbook's country: a phone that
/// roams, a SIP trunk abroad or a speed dial may reach them anywhere.
const EMERGENCY_EVERYWHERE: &[&str] = &["911", "112", "999", "000", "08"];

/// Emergency numbers of the playbook's default country, by ISO 3166 code.
const EMERGENCY_BY_COUNTRY: &[(&str, &[&str])] = &[
    ("AR", &["100", "101", "107"]),
    ("AT", &["122", "133", "144"]),
    ("AU", &["106"]),
    ("BE", &["100", "101"]),
    ("BR", &["190", "192", "193", "199"]),
    ("CH", &["117", "118", "144"]),
    ("CN", &["110", "119", "120", "122"]),
    ("CZ", &["150", "155", "158"]),
    ("ES", &["061", "062", "080", "085", "091", "092"]),
    ("DE", &["110"]),
    ("FR", &["15", "17", "18", "114", "115", "196"]),
    ("GR", &["100", "166", "199"]),
    ("IL", &["100", "101", "102"]),
    ("IN", &["100", "101", "102", "108"]),
    ("IT", &["113", "115", "118"]),
    ("JP", &["110", "118", "119"]),
    ("KR", &["113", "119"]),
    ("MX", &["060", "065", "066"]),
    ("NO", &["110", "113"]),
    ("NZ", &["111"]),
    ("PL", &["997", "998"]),
    ("RU", &["101", "102", "103", "104"]),
    ("SG", &["995"]),
    ("TR", &["155", "156"]),
    ("ZA", &["10111", "10177"]),
];

/// Whether `input` dials an emergency number: one of [`EMERGENCY_EVERYWHERE`]
/// or of the country's, alone or behind an exit code (`011`, `00`), a trunk
/// prefix (`0`) or a country calling code (`+1 911`, `+44 999`).
fn is_emergency(input: &str, country: Country) -> bool {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 9 {
        return false;
    }
    let id: &str = country.0.as_ref();
    let local = EMERGENCY_BY_COUNTRY
        .iter()
        .filter(|(c, _)| *c == id)
        .flat_map(|(_, numbers)| numbers.iter());
    let is_country_code = |prefix: &str| {
        prefix
            .parse::<u16>()
            .ok()
            .is_some_and(|code| phonenumber::metadata::DATABASE.by_code(&code).is_some())
    };
    EMERGENCY_EVERYWHERE.iter().chain(local).any(|number| {
        let Some(prefix) = digits.strip_suffix(number) else {
            return false;
        };
        let prefix = prefix
            .strip_prefix("011")
            .or_else(|| prefix.strip_prefix("00"))
            .unwrap_or(prefix);
        prefix.is_empty() || prefix == "0" || (prefix.len() <= 3 && is_country_code(prefix))
    })
}

/// Normalises a caller ID to the account's 10-digit FoneNumber.
///
/// FoneNumbers are North American numbers; a leading `1` or `+1` is dropped.
pub fn fonenumber(input: &str) -> Result<String, PhoneError> {
    check_characters(input)?;
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    let ten = match digits.len() {
        10 => digits.as_str(),
        11 if digits.starts_with('1') => &digits[1..],
        _ => return Err(PhoneError::CallerId(input.to_string())),
    };
    // NANP area codes and exchanges never start with 0 or 1.
    let b = ten.as_bytes();
    if matches!(b[0], b'0' | b'1') || matches!(b[3], b'0' | b'1') {
        return Err(PhoneError::CallerId(input.to_string()));
    }
    Ok(ten.to_string())
}

fn check_characters(input: &str) -> Result<(), PhoneError> {
    let ok = input
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '.' | '(' | ')' | '/'));
    if ok {
        Ok(())
    } else {
        Err(PhoneError::Characters(input.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> Result<String, PhoneError> {
        dial_string(s, Country::default())
    }

    #[test]
    fn dial_strings() {
        let de = Country::parse("DE").unwrap();
        let gb = Country::parse("GB").unwrap();
        let cases: &[(&str, Country, &str)] = &[
            ("+1 (321) 499-1008", Country::default(), "13214991008"),
            ("(321) 499-1008", Country::default(), "13214991008"),
            ("321.499.1008", Country::default(), "13214991008"),
            ("13214991008", Country::default(), "13214991008"),
            ("+49 89 4567898", Country::default(), "01149894567898"),
            ("011 49 89 4567898", Country::default(), "01149894567898"),
            ("089 4567898", de, "01149894567898"),
            ("+44 20 7946 0958", Country::default(), "011442079460958"),
            ("020 7946 0958", gb, "011442079460958"),
            ("+1 416 555 0123", de, "14165550123"),
            ("+33 1 42 68 53 00", Country::default(), "01133142685300"),
            ("011 33 1 42 68 53 00", Country::default(), "01133142685300"),
            ("0033 1 42 68 53 00", de, "01133142685300"),
            ("+55 11 98765 4321", Country::default(), "0115511987654321"),
            ("+1 321 555 2222", Country::default(), "13215552222"),
        ];
        for (input, country, want) in cases {
            assert_eq!(
                dial_string(input, *country).as_deref(),
                Ok(*want),
                "{input}"
            );
        }
    }

    #[test]
    fn refused_numbers() {
        assert_eq!(us("12345"), Err(PhoneError::DigitCount("12345".into())));
        assert_eq!(
            us("1234567890123456789"),
            Err(PhoneError::DigitCount("1234567890123456789".into()))
        );
        assert!(matches!(
            us("1-800-FLOWERS"),
            Err(PhoneError::Characters(_))
        ));
        assert!(matches!(us("(021) 499-1008"), Err(PhoneError::Invalid(_))));
        assert!(matches!(us("+999 1234 5678"), Err(PhoneError::Invalid(_))));
    }

    #[test]
    fn speed_dials() {
        let us = Country::default();
        assert_eq!(speed_dial("12", us).as_deref(), Ok("12"));
        assert_eq!(speed_dial("123456", us).as_deref(), Ok("123456"));
        assert!(speed_dial("1234567", us).is_err());
        assert!(speed_dial("", us).is_err());
        assert!(speed_dial("1a", us).is_err());
    }

    #[test]
    fn emergency_numbers_are_refused_everywhere() {
        let us = Country::default();
        for n in ["911", "112", "999", "000", "08"] {
            assert_eq!(
                speed_dial(n, us),
                Err(PhoneError::Emergency(n.into())),
                "{n}"
            );
            assert_eq!(us_dial(n), Err(PhoneError::Emergency(n.into())), "{n}");
        }
        for n in [
            "+1 911",
            "1-911",
            "+44 999",
            "0044 999",
            "011 49 112",
            "0112",
            "9-1-1",
        ] {
            assert_eq!(us_dial(n), Err(PhoneError::Emergency(n.into())), "{n}");
        }
    }

    #[test]
    fn emergency_numbers_of_the_default_country_are_refused() {
        let fr = Country::parse("FR").unwrap();
        let za = Country::parse("ZA").unwrap();
        assert_eq!(
            speed_dial("15", fr),
            Err(PhoneError::Emergency("15".into()))
        );
        let de = Country::parse("DE").unwrap();
        assert_eq!(
            dial_string("110", de),
            Err(PhoneError::Emergency("110".into()))
        );
        assert_eq!(
            speed_dial("10111", za),
            Err(PhoneError::Emergency("10111".into()))
        );
        // Elsewhere these are ordinary speed dials.
        assert_eq!(speed_dial("15", Country::default()).as_deref(), Ok("15"));
        assert_eq!(
            speed_dial("4112", Country::default()).as_deref(),
            Ok("4112")
        );
        // Real numbers that merely end in an emergency number still work.
        assert_eq!(us_dial("+1 (321) 499-1911").as_deref(), Ok("13214991911"));
    }

    fn us_dial(s: &str) -> Result<String, PhoneError> {
        dial_string(s, Country::default())
    }

    #[test]
    fn caller_ids() {
        assert_eq!(fonenumber("321-555-1111").as_deref(), Ok("3215551111"));
        assert_eq!(fonenumber("+1 (321) 555-1111").as_deref(), Ok("3215551111"));
        assert!(fonenumber("555-1111").is_err());
        assert!(fonenumber("+49 89 4567898").is_err());
        assert!(fonenumber("021-555-1111").is_err());
    }

    #[test]
    fn messages() {
        assert_eq!(
            PhoneError::DigitCount("12345".into()).to_string(),
            "\"12345\" is not a phone number (7 to 15 digits)"
        );
    }
}
