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
    if !valid::is_valid(&number) {
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

/// libphonenumber's validity check without the `phonenumber` crate's shared
/// regex cache.
///
/// The crate keeps every compiled pattern in one LRU behind one mutex, keyed by
/// the pattern text (hashing kilobytes per lookup), and matches with an
/// unanchored `find` whose match must start at 0. Here each region's patterns
/// are compiled once, anchored at the start (`^(?:…)`, which accepts exactly the
/// inputs whose leftmost match starts at 0), on first use of that region, and
/// shared without a lock afterwards. The decisions are the crate's own
/// (`phonenumber::is_valid`): a test compares both over a large random sample.
mod valid {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
    use phonenumber::{PhoneNumber, country};
    use regex::{Regex, RegexBuilder};

    /// One pattern of the metadata: compiled anchored, or the crate's own when
    /// it cannot be (never with the shipped metadata; kept so nothing panics).
    enum Pattern {
        Anchored(Regex),
        Crate(&'static Descriptor),
    }

    /// A number type's descriptor: its national-number pattern and lengths.
    struct Desc {
        pattern: Pattern,
        possible_length: &'static [u16],
    }

    impl Desc {
        fn new(desc: &'static Descriptor) -> Desc {
            let pattern = match anchored(desc.national_number().as_str()) {
                Some(re) => Pattern::Anchored(re),
                None => Pattern::Crate(desc),
            };
            Desc {
                pattern,
                possible_length: desc.possible_length(),
            }
        }

        /// `Descriptor::is_match`: a possible length, and a match at the start.
        fn is_match(&self, value: &str) -> bool {
            match &self.pattern {
                Pattern::Anchored(re) => {
                    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
                    (self.possible_length.is_empty() || self.possible_length.contains(&len))
                        && re.is_match(value)
                }
                Pattern::Crate(desc) => desc.is_match(value),
            }
        }
    }

    /// One region's compiled patterns.
    struct Region {
        general: Desc,
        /// Every type whose match makes a number valid (all but general,
        /// emergency, short code, standard rate, carrier and no-international,
        /// as in `phonenumber::number_type`).
        types: Vec<Desc>,
        /// `Some(None)` when the region has leading digits that could not be
        /// compiled here: the crate's own pattern is used for them.
        leading_digits: Option<Option<Regex>>,
    }

    impl Region {
        fn new(meta: &'static Metadata) -> Region {
            let d = meta.descriptors();
            let types = [
                d.premium_rate(),
                d.toll_free(),
                d.shared_cost(),
                d.voip(),
                d.personal_number(),
                d.pager(),
                d.uan(),
                d.voicemail(),
                d.fixed_line(),
                d.mobile(),
            ]
            .into_iter()
            .flatten()
            .map(Desc::new)
            .collect();
            let leading_digits = meta.leading_digits().map(|re| anchored(re.as_str()));
            Region {
                general: Desc::new(d.general()),
                types,
                leading_digits,
            }
        }

        /// `phonenumber::validator::number_type(..) != Type::Unknown`.
        fn has_type(&self, national: &str) -> bool {
            self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
        }

        /// Whether the region's leading digits start `national`, if it has them.
        fn leading_digits(&self, meta: &Metadata, national: &str) -> Option<bool> {
            match self.leading_digits.as_ref()? {
                Some(re) => Some(re.is_match(national)),
                None => Some(
                    meta.leading_digits()?
                        .find(national)
                        .is_some_and(|m| m.start() == 0),
                ),
            }
        }
    }

    /// `^(?:pattern)` with the crate's flags (whitespace in patterns ignored).
    fn anchored(pattern: &str) -> Option<Regex> {
        // The newline ends a `#` comment, should a pattern ever hold one.
        RegexBuilder::new(&format!("^(?:{pattern}\n)"))
            .ignore_whitespace(true)
            .build()
            .ok()
    }

    /// Every region of the metadata, each compiled on first use.
    type Regions = HashMap<(u16, &'static str), OnceLock<Region>>;

    fn regions() -> &'static Regions {
        static REGIONS: OnceLock<Regions> = OnceLock::new();
        REGIONS.get_or_init(|| {
            let mut map = Regions::new();
            for code in 1..=999u16 {
                for meta in DATABASE.by_code(&code).unwrap_or_default() {
                    map.insert((meta.country_code(), meta.id()), OnceLock::new());
                }
            }
            map
        })
    }

    /// The compiled patterns of `meta`'s region.
    fn region(meta: &'static Metadata) -> Option<&'static Region> {
        let cell = regions().get(&(meta.country_code(), meta.id()))?;
        Some(cell.get_or_init(|| Region::new(meta)))
    }

    /// The metadata a number is checked against: `phonenumber::validator::source_for`.
    fn source(code: u16, national: &str) -> Option<&'static Metadata> {
        let ids = DATABASE.region(&code)?;
        if let [only] = ids.as_slice() {
            if *only == "001" {
                return DATABASE.by_code(&code)?.into_iter().next();
            }
            let id: country::Id = only.parse().ok()?;
            return DATABASE.by_id(id.as_ref());
        }
        for id in ids {
            let meta = DATABASE.by_id(id)?;
            let region = region(meta)?;
            let chosen = match region.leading_digits(meta, national) {
                Some(starts) => starts,
                None => region.has_type(national),
            };
            if chosen {
                let id: country::Id = id.parse().ok()?;
                return DATABASE.by_id(id.as_ref());
            }
        }
        None
    }

    /// `phonenumber::is_valid`, without the shared cache.
    pub(super) fn is_valid(number: &PhoneNumber) -> bool {
        let national = number.national().to_string();
        source(number.code().value(), &national)
            .and_then(region)
            .is_some_and(|region| region.has_type(&national))
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

    /// Every example number of the metadata, with its country calling code.
    fn examples() -> Vec<(u16, String)> {
        let mut all = Vec::new();
        for code in 1..=999u16 {
            for meta in phonenumber::metadata::DATABASE
                .by_code(&code)
                .unwrap_or_default()
            {
                let d = meta.descriptors();
                let types = [
                    Some(d.general()),
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.shared_cost(),
                    d.personal_number(),
                    d.voip(),
                    d.pager(),
                    d.uan(),
                    d.voicemail(),
                    d.emergency(),
                    d.short_code(),
                ];
                for desc in types.into_iter().flatten() {
                    if let Some(example) = desc.example() {
                        all.push((code, example.to_string()));
                    }
                }
            }
        }
        all
    }

    /// The fast validity check decides exactly as `phonenumber::is_valid` over
    /// a random sample: every region's example numbers with digits changed,
    /// added or removed, and random digits under every calling code. (The
    /// crate's own check recompiles patterns as the sample hops between
    /// regions, so 4 000 numbers already take a while in a debug build; 40 000
    /// were checked the same way when the fast path was written.)
    #[test]
    fn fast_validity_agrees_with_the_phonenumber_crate() {
        let examples = examples();
        assert!(examples.len() > 1_000, "{} examples", examples.len());
        let codes: Vec<u16> = (1..=999u16)
            .filter(|c| phonenumber::metadata::DATABASE.region(c).is_some())
            .collect();
        let mut rng = fastrand::Rng::with_seed(0x5eed_ca11);
        let (mut checked, mut valid) = (0, 0);
        for i in 0..4_000 {
            let (code, national) = if i % 4 == 3 {
                let code = codes[rng.usize(..codes.len())];
                let len = rng.usize(2..=14);
                let digits: String = (0..len).map(|_| rng.digit(10)).collect();
                (code, digits)
            } else {
                let (code, example) = &examples[rng.usize(..examples.len())];
                let mut digits: Vec<char> = example.chars().collect();
                for _ in 0..rng.usize(0..=2) {
                    let at = rng.usize(..digits.len());
                    match rng.u8(0..4) {
                        0 => drop(digits.remove(at)),
                        1 => digits.insert(at, rng.digit(10)),
                        _ => digits[at] = rng.digit(10),
                    }
                    if digits.is_empty() {
                        digits.push(rng.digit(10));
                    }
                }
                (*code, digits.into_iter().collect())
            };
            let Ok(number) = phonenumber::parse(None, format!("+{code}{national}")) else {
                continue;
            };
            let want = phonenumber::is_valid(&number);
            assert_eq!(valid::is_valid(&number), want, "+{code} {national}");
            checked += 1;
            valid += usize::from(want);
        }
        assert!(checked > 3_000, "only {checked} numbers parsed");
        assert!(valid > 1_000, "only {valid} of {checked} valid");
    }

    #[test]
    fn messages() {
        assert_eq!(
            PhoneError::DigitCount("12345".into()).to_string(),
            "\"12345\" is not a phone number (7 to 15 digits)"
        );
    }
}
