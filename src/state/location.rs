//! Where `--state` points: a state directory or a PostgreSQL database, and how such a URL is
//! shown without its password.
//!
//! Owns: telling a `postgres://` URL from a directory path, and the redaction of URLs for
//! messages and logs. Must not touch: opening either store (the caller picks [`FileStore`] or
//! [`PgStore`] from the variant), the CLI flags (`StateArgs` stays as it is).
//!
//! [`FileStore`]: super::FileStore
//! [`PgStore`]: super::PgStore

use std::path::PathBuf;

/// The URL schemes that name a PostgreSQL database, as libpq and tokio-postgres accept them.
const PG_SCHEMES: [&str; 2] = ["postgres", "postgresql"];

/// What `--state` names.
///
/// `Debug` and `Display` never show a URL's password: a location ends up in logs and errors.
#[derive(Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A state directory (the file store).
    Dir(PathBuf),
    /// A PostgreSQL URL, kept exactly as given (password included) for connecting.
    Postgres(String),
}

impl StateLocation {
    /// `postgres://…` or `postgresql://…` (scheme in any case) is a database; anything else
    /// without a `scheme://` prefix is a directory. Another scheme (`mysql://`, `http://`) is an
    /// error rather than a directory called `mysql:`, which is never what was meant.
    pub fn parse(s: &str) -> Result<StateLocation, String> {
        if s.is_empty() {
            return Err(
                "the state location is empty: give a directory or a postgres:// URL".into(),
            );
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(StateLocation::Dir(PathBuf::from(s)));
        };
        let looks_like_scheme = !scheme.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !looks_like_scheme {
            return Ok(StateLocation::Dir(PathBuf::from(s)));
        }
        let lower = scheme.to_ascii_lowercase();
        if PG_SCHEMES.contains(&lower.as_str()) {
            // tokio-postgres only accepts the lower-case prefix.
            return Ok(StateLocation::Postgres(format!("{lower}://{rest}")));
        }
        // `scheme` is letters, digits and `+-.` only (checked above): safe to show as is.
        Err(format!(
            "unsupported state URL scheme `{scheme}://`: give a directory or a postgres:// URL"
        ))
    }

    /// Whether this is a database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StateLocation::Postgres(_))
    }
}

impl std::str::FromStr for StateLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StateLocation::parse(s)
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Dir(dir) => write!(f, "{}", dir.display()),
            StateLocation::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl std::fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Dir(dir) => f.debug_tuple("Dir").field(dir).finish(),
            StateLocation::Postgres(url) => {
                f.debug_tuple("Postgres").field(&redact_url(url)).finish()
            }
        }
    }
}

/// A PostgreSQL URL fit for a message: the password (in the user info or a `password=`
/// parameter) replaced by `***`.
///
/// It splits the URL the way tokio-postgres's own (libpq-like, lenient) parser does — user
/// info up to the first `@`, parameters split on `&` — so that whatever the driver would take
/// as the password is what gets hidden, however odd the URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: a key=value string could hold `password=` anywhere, and a bare path
        // holds no secret; showing neither form is safer than parsing the first.
        return if url.contains('=') {
            "<connection string>".to_string()
        } else {
            url.to_string()
        };
    };
    let (creds, after_creds) = match rest.find('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(creds) = creds {
        match creds.split_once(':') {
            Some((user, _password)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            None => out.push_str(creds),
        }
        out.push('@');
    }
    let (base, query) = match after_creds.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (after_creds, None),
    };
    out.push_str(base);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if is_password_key(key) => format!("{key}=***"),
                _ => param.to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// `password`, however it is percent-encoded (the driver decodes keys before matching them).
fn is_password_key(key: &str) -> bool {
    percent_encoding::percent_decode_str(key)
        .decode_utf8()
        .is_ok_and(|k| k.eq_ignore_ascii_case("password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_databases_in_either_scheme_and_any_case() {
        for (given, kept) in [
            ("postgres://u@db/x", "postgres://u@db/x"),
            (
                "postgresql://db:5433/x?sslmode=require",
                "postgresql://db:5433/x?sslmode=require",
            ),
            ("PostgreSQL://db/x", "postgresql://db/x"),
        ] {
            assert_eq!(
                StateLocation::parse(given).unwrap(),
                StateLocation::Postgres(kept.to_string()),
                "{given}"
            );
        }
    }

    #[test]
    fn paths_are_directories() {
        for given in [
            ".ovhform",
            "/var/lib/ovhform",
            "state:odd",
            "a/b://c",
            "./x://y",
            "C:\\state",
        ] {
            assert_eq!(
                StateLocation::parse(given).unwrap(),
                StateLocation::Dir(PathBuf::from(given)),
                "{given}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_are_refused() {
        let err = StateLocation::parse("mysql://db/x").unwrap_err();
        assert!(err.contains("mysql://"), "{err}");
        assert!(StateLocation::parse("").is_err());
        assert_eq!(
            "postgres://db/x".parse::<StateLocation>(),
            Ok(StateLocation::Postgres("postgres://db/x".into()))
        );
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let loc =
            StateLocation::parse("postgres://ovh:hunter2@db:5432/x?password=hunter3").unwrap();
        for shown in [loc.to_string(), format!("{loc:?}")] {
            assert!(!shown.contains("hunter"), "{shown}");
            assert!(shown.contains("ovh:***@db:5432/x"), "{shown}");
            assert!(shown.contains("password=***"), "{shown}");
        }
        assert!(loc.is_postgres());
        assert!(!StateLocation::Dir(".ovhform".into()).is_postgres());
    }

    #[test]
    fn redaction_follows_the_drivers_reading_of_the_url() {
        let cases = [
            ("postgres://db/x", "postgres://db/x"),
            ("postgres://user@db/x", "postgres://user@db/x"),
            ("postgres://user:p%40ss@db/x", "postgres://user:***@db/x"),
            // The driver takes the user info up to the first `@`: `ss@db` is then the host,
            // and `p` the password.
            ("postgres://user:p@ss@db/x", "postgres://user:***@ss@db/x"),
            (
                "postgres://db/x?sslmode=require&Password=s3&application_name=a",
                "postgres://db/x?sslmode=require&Password=***&application_name=a",
            ),
            (
                "postgres://db/x?pass%77ord=s3",
                "postgres://db/x?pass%77ord=***",
            ),
            ("host=db password=s3", "<connection string>"),
        ];
        for (given, shown) in cases {
            assert_eq!(redact_url(given), shown, "{given}");
        }
    }
}
