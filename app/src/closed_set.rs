//! Macros shared by the domain modules: `closed_set!` (an enum stored as text, with its stored
//! forms and labels written once) and `shared_subject!` (the shared-authorization subject in SQL).

/// Declares an enum whose values are stored (and sent) as text: each variant with its stored
/// form and the label people read. Generates `ALL`, `as_str`, `label` and `parse`; `parse`
/// names the form field and says what was expected when the text is unknown.
///
/// ```ignore
/// closed_set! {
///     /// The environments an application is deployed to.
///     pub enum Environment ("environment", "environment") {
///         Development = "development", "Development";
///     }
/// }
/// ```
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($field:literal, $noun:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal, $label:literal;)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// What people read.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            /// From the stored form; anything else is invalid input for the form field.
            pub fn parse(s: &str) -> Result<Self, $crate::error::AppError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::error::AppError::invalid($field, format!(concat!("Unknown ", $noun, " '{}'."), s))),
                }
            }
        }

        /// From a stored column (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = $crate::error::AppError;
            fn try_from(s: String) -> Result<Self, $crate::error::AppError> {
                Self::parse(&s)
            }
        }
    };
}

/// [`SHARED_SUBJECT`](crate::authorizations::ssr::SHARED_SUBJECT) as SQL text, for `concat!`.
#[macro_export]
macro_rules! shared_subject {
    () => {
        "0"
    };
}

/// The status of one authorization (a `connection_authorizations` row `ca` and its account `a`)
/// as SQL: the account's, except that a connected account is "needs reauthorization" for a
/// connection that asked for more scopes than it was consented with (`ca.reconsent_reason`), so
/// other connections sharing the account are not affected.
#[macro_export]
macro_rules! link_status {
    () => {
        "CASE WHEN a.status = 'connected' AND ca.reconsent_reason IS NOT NULL THEN 'needs_reauthorization' ELSE a.status END"
    };
}

/// Why, for [`link_status!`]: the account's reason, else the link's.
#[macro_export]
macro_rules! link_reason {
    () => {
        "COALESCE(a.status_reason, ca.reconsent_reason)"
    };
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_shared_subject_is_spelled_the_same_in_sql() {
        assert_eq!(shared_subject!(), crate::authorizations::ssr::SHARED_SUBJECT.to_string());
    }
}

/// Values of a closed set as typed or stored: separated by spaces or commas, repeats dropped,
/// at least one (otherwise `empty` on `field`). Each value is read by `parse`.
pub(crate) fn parse_list<T: PartialEq>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, crate::error::AppError>,
    field: &str,
    empty: &str,
) -> Result<Vec<T>, crate::error::AppError> {
    let mut out = Vec::new();
    for part in raw.split(|c: char| c.is_whitespace() || c == ',').filter(|p| !p.is_empty()) {
        let value = parse(part)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    if out.is_empty() {
        return Err(crate::error::AppError::invalid(field, empty));
    }
    Ok(out)
}
