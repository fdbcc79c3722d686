//! The macro every stable error-code enum of Latchkey is written with.
//!
//! A code's wire form and its meaning are written once, beside the variant, and the
//! generated `ALL` cannot leave a variant out: the table in `docs/error-codes.md` is built
//! from `ALL`, so a code that exists is a code that is documented.

/// Declares a `Copy` enum of stable codes: each variant carries its doc comment (the
/// meaning, shown in the generated table) and `= "WIRE_FORM"`. Generates `ALL` (every
/// variant, in declaration order), `as_str()`, `meaning()` and `Display`.
///
/// ```
/// latchkey_saml::stable_codes! {
///     /// Why a door stayed shut.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum DoorCode {
///         /// The key does not fit.
///         WrongKey = "WRONG_KEY",
///     }
/// }
/// assert_eq!(DoorCode::WrongKey.as_str(), "WRONG_KEY");
/// assert_eq!(DoorCode::WrongKey.meaning(), "The key does not fit.");
/// assert_eq!(DoorCode::ALL, &[DoorCode::WrongKey]);
/// ```
#[macro_export]
macro_rules! stable_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $variant:ident = $code:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[doc = $doc])+
                $variant,
            )+
        }

        impl $name {
            /// Every code, in declaration order: the rows of the generated code table.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code as shown on pages, written to logs and asserted by tests. Stable
            /// across versions: the message text may be reworded, the code is not.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// What the code means, for the generated table (the variant's doc comment).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
