//! Validated newtypes for what a person types: display names, link names, emails, service URLs
//! and scopes. The browser validates with the same `parse()` the server enforces.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;

const NAME_MAX: usize = 50;
const NAME_SPECIALS: &str = "*_-@/!:|&~\\+ .";

/// A display name typed by a person (connection names, connector names, authorized account
/// names): 1–50 characters, starting with a letter, digit or underscore, and only the special
/// characters `* _ - @ / ! : | & ~ \ +`, spaces and dots after that. Markup characters such as
/// `<`, `>`, `"` are refused rather than escaped away.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(AppError::invalid(field, "Enter a name."));
        }
        let count = s.chars().count();
        if count > NAME_MAX {
            return Err(AppError::invalid(field, format!("Use at most {NAME_MAX} characters (this one has {count}).")));
        }
        let first = s.chars().next().unwrap_or(' ');
        if !(first.is_alphanumeric() || first == '_') {
            return Err(AppError::invalid(field, "Start with a letter, a digit or an underscore."));
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_alphanumeric() || NAME_SPECIALS.contains(*c))) {
            return Err(AppError::invalid(
                field,
                format!("'{bad}' is not allowed. Use letters, digits, spaces and * _ - @ / ! : | & ~ \\ + ."),
            ));
        }
        Ok(DisplayName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stable identifier used in scripts (`invokeurl ... connection: "zoho_crm"`): lowercase
/// ASCII letters, digits and underscores, starting with a letter, at most 50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkName(String);

impl LinkName {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(AppError::invalid("link_name", "Enter a link name."));
        }
        if s.len() > NAME_MAX {
            return Err(AppError::invalid("link_name", format!("Use at most {NAME_MAX} characters.")));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(AppError::invalid("link_name", "Start the link name with a lowercase letter."));
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(AppError::invalid(
                "link_name",
                "Use only lowercase letters, digits and underscores in a link name.",
            ));
        }
        Ok(LinkName(s.to_string()))
    }

    /// Derives a link name from a display name: "Zoho CRM (Sales)" → "zoho_crm_sales".
    pub fn derive_from(name: &str) -> String {
        let mut out = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        }
        let trimmed = out.trim_end_matches('_');
        let mut s: String = trimmed.chars().take(NAME_MAX).collect();
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            s = format!("c_{s}").chars().take(NAME_MAX).collect();
        }
        s
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address used to sign in (only the shape is checked; it is compared lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let s = raw.trim().to_lowercase();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            })
            && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>');
        if valid {
            Ok(Email(s))
        } else {
            Err(AppError::invalid("email", "Enter an email address like name@example.com."))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ComponentKind, ConnectionType, Environment, Role};

    #[test]
    fn display_names() {
        assert!(DisplayName::parse("name", "Zoho CRM").is_ok());
        assert!(DisplayName::parse("name", "_crm-1 @ eu/*").is_ok());
        assert_eq!(DisplayName::parse("name", "  Spaced  ").unwrap().as_str(), "Spaced");
        for bad in ["", "   ", "-starts", "<script>", "a\"b", "x".repeat(51).as_str(), "é".repeat(51).as_str()] {
            let err = DisplayName::parse("name", bad).unwrap_err();
            assert_eq!(err.field(), Some("name"), "{bad:?}");
        }
        assert!(DisplayName::parse("name", &"é".repeat(50)).is_ok(), "counts characters, not bytes");
    }

    #[test]
    fn link_names() {
        assert!(LinkName::parse("zoho_crm_1").is_ok());
        for bad in ["", "Zoho", "1abc", "has space", "dash-ed", &"a".repeat(51)] {
            assert!(LinkName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(LinkName::derive_from("Zoho CRM (Sales)"), "zoho_crm_sales");
        assert_eq!(LinkName::derive_from("123 Go"), "c_123_go");
        assert!(LinkName::parse(&LinkName::derive_from("  ** ")).is_ok());
    }

    #[test]
    fn enums_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        for t in ConnectionType::ALL {
            assert_eq!(ConnectionType::parse(t.as_str()).unwrap(), t);
        }
        for e in Environment::ALL {
            assert_eq!(Environment::parse(e.as_str()).unwrap(), e);
        }
        for k in ComponentKind::ALL {
            assert_eq!(ComponentKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Admin@Demo.Test ").unwrap().as_str(), "admin@demo.test");
        for bad in ["", "nobody", "a@b", "@x.y", "a b@c.d", "<a@b.c>"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}

/// An absolute http(s) URL of a third-party endpoint, as typed in a custom connector. Whether the
/// server may actually reach it (loopback, private ranges) is decided when it is called.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let bad = |m: &str| AppError::invalid(field, m.to_string());
        if s.is_empty() {
            return Err(bad("Enter a URL."));
        }
        if s.len() > 2000 {
            return Err(bad("This URL is too long (at most 2000 characters)."));
        }
        let url =
            AbsoluteUrl::parse(s).ok_or_else(|| bad("Enter a full URL such as https://example.com/oauth/token."))?;
        if !matches!(url.scheme.as_str(), "https" | "http") {
            return Err(bad("Use an https:// (or http://) URL."));
        }
        if !url.has_host {
            return Err(bad("The URL needs a host name."));
        }
        if url.has_credentials {
            return Err(bad("Do not put credentials in the URL."));
        }
        // `#` appears in a serialized URL only before its fragment (elsewhere it is escaped).
        if url.href.contains('#') {
            return Err(bad("Remove the #fragment from the URL."));
        }
        Ok(ServiceUrl(url.href))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What validation reads of an absolute URL, from a WHATWG URL parser: the `url` crate on the
/// server, the browser's own `URL` in the client. Both follow the same standard; the client so
/// does not carry the `url` crate's IDNA tables, which (being data, which the WASM split cannot
/// move) were downloaded with every page, about 18 KB brotli.
struct AbsoluteUrl {
    scheme: String,
    has_host: bool,
    has_credentials: bool,
    /// The URL serialized.
    href: String,
}

impl AbsoluteUrl {
    #[cfg(not(feature = "hydrate"))]
    fn parse(s: &str) -> Option<Self> {
        let url = url::Url::parse(s).ok()?;
        Some(AbsoluteUrl {
            scheme: url.scheme().to_string(),
            has_host: url.host_str().is_some_and(|h| !h.is_empty()),
            has_credentials: !url.username().is_empty() || url.password().is_some(),
            href: url.to_string(),
        })
    }

    #[cfg(feature = "hydrate")]
    fn parse(s: &str) -> Option<Self> {
        let url = web_sys::Url::new(s).ok()?;
        Some(AbsoluteUrl {
            scheme: url.protocol().trim_end_matches(':').to_string(),
            has_host: !url.hostname().is_empty(),
            has_credentials: !url.username().is_empty() || !url.password().is_empty(),
            href: url.href(),
        })
    }
}

/// One OAuth2 scope token (RFC 6749 §3.3: printable ASCII except space, `"` and `\`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope(String);

impl Scope {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        if s.is_empty() || s.len() > 200 {
            return Err(AppError::invalid("scopes", "A scope must have 1 to 200 characters."));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_graphic() && *c != '"' && *c != '\\')) {
            return Err(AppError::invalid("scopes", format!("'{c}' is not allowed in a scope ({s}).")));
        }
        Ok(Scope(s.to_string()))
    }

    /// Splits a list typed by a person (commas, spaces or new lines) into scopes.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, AppError> {
        let mut out: Vec<Scope> = Vec::new();
        for part in raw.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()) {
            let s = Scope::parse(part)?;
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod url_scope_tests {
    use super::*;

    #[test]
    fn service_urls() {
        assert!(ServiceUrl::parse("token_url", "https://api.example.com/oauth/token").is_ok());
        assert!(ServiceUrl::parse("token_url", "http://127.0.0.1:4010/token").is_ok());
        // Kept as the WHATWG standard serializes it (the browser's parser gives the same).
        let idn = ServiceUrl::parse("token_url", " HTTPS://Bücher.example/Token?a=b c ").unwrap();
        assert_eq!(idn.as_str(), "https://xn--bcher-kva.example/Token?a=b%20c");
        for bad in [
            "",
            "example.com/token",
            "ftp://x.y/z",
            "https://user:pw@x.y/",
            "https://:pw@x.y/",
            "https://x.y/#f",
            "https://x.y/#",
            "javascript:alert(1)",
        ] {
            assert_eq!(ServiceUrl::parse("token_url", bad).unwrap_err().field(), Some("token_url"), "{bad:?}");
        }
    }

    #[test]
    fn scopes() {
        let list = Scope::parse_list("crm.read, crm.write\nfiles crm.read").unwrap();
        assert_eq!(list.iter().map(Scope::as_str).collect::<Vec<_>>(), ["crm.read", "crm.write", "files"]);
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse(&"s".repeat(201)).is_err());
    }
}
