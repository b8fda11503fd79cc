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
    };
}

/// [`SHARED_SUBJECT`](crate::authorizations::ssr::SHARED_SUBJECT) as SQL text, for `concat!`.
#[macro_export]
macro_rules! shared_subject {
    () => {
        "0"
    };
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_shared_subject_is_spelled_the_same_in_sql() {
        assert_eq!(shared_subject!(), crate::authorizations::ssr::SHARED_SUBJECT.to_string());
    }
}
