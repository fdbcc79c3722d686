//! The crate's one error type.
//!
//! Variants are grouped by layer: reading and writing XML, the schema of SAML messages,
//! the bindings, metadata, and the Web Browser SSO profile rules. Each profile rule has
//! its own variant, so a caller (and a test) can tell exactly which rule refused a
//! response, and an operator can read it from a log line.

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- XML in and out -----
    /// The hardened reader, the canonicalizer or the signature layer refused the input.
    #[error(transparent)]
    Xml(#[from] latchkey_xmlsec::Error),
    /// A value holds a character that XML 1.0 cannot carry, even escaped (a control
    /// character other than tab, LF and CR, or U+FFFE/U+FFFF). Refused rather than
    /// replaced, so two different values never serialize the same.
    #[error("value contains U+{0:04X}, which XML 1.0 cannot represent")]
    UnrepresentableChar(u32),
    /// The operating system's random number generator failed while making an ID.
    #[error("random number generator failed")]
    Random,

    // ----- SAML schema -----
    /// The document element (or the node handed in) is not the expected SAML element.
    #[error("expected element {expected}, found {found}")]
    UnexpectedElement {
        /// `prefix:Name` of what was expected.
        expected: &'static str,
        /// `{namespace}Name` of what was found.
        found: String,
    },
    /// A required child element is absent.
    #[error("{parent} has no {child} element")]
    MissingElement {
        /// The parent element.
        parent: &'static str,
        /// The missing child.
        child: &'static str,
    },
    /// An element that may appear once appears more than once. Duplicates are how
    /// wrapping attacks make two readers see two different values.
    #[error("{parent} has more than one {child} element")]
    DuplicateElement {
        /// The parent element.
        parent: &'static str,
        /// The repeated child.
        child: &'static str,
    },
    /// A required attribute is absent.
    #[error("{element} has no {attribute} attribute")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The missing attribute.
        attribute: &'static str,
    },
    /// An attribute or element value does not have the type the schema gives it.
    #[error("{element}/{attribute}: invalid value {value:?}")]
    InvalidValue {
        /// The element.
        element: &'static str,
        /// The attribute (or `text()` for element content).
        attribute: &'static str,
        /// The offending value, as found.
        value: String,
    },
    /// An element whose content must be text only has child elements.
    #[error("{0} must contain text only")]
    NotTextOnly(&'static str),
    /// A timestamp is not a valid `xs:dateTime`.
    #[error("invalid xs:dateTime {0:?}")]
    InvalidDateTime(String),
    /// A duration is not a valid `xs:duration`.
    #[error("invalid xs:duration {0:?}")]
    InvalidDuration(String),

    // ----- bindings -----
    /// A required binding parameter (query or form field) is absent.
    #[error("binding parameter {0} is missing")]
    MissingParameter(&'static str),
    /// A binding parameter appears more than once; which copy was signed would be
    /// ambiguous.
    #[error("binding parameter {0} appears more than once")]
    DuplicateParameter(&'static str),
    /// Both `SAMLRequest` and `SAMLResponse` are present.
    #[error("both SAMLRequest and SAMLResponse are present")]
    AmbiguousMessage,
    /// A parameter is not valid base64.
    #[error("parameter {0} is not valid base64")]
    Base64(&'static str),
    /// A parameter is not valid percent-encoding or not UTF-8 once decoded.
    #[error("parameter {0} is not valid URL encoding or UTF-8")]
    UrlEncoding(&'static str),
    /// The encoded message is larger than the configured cap; it was not decoded.
    #[error("encoded message is {size} bytes, over the limit of {limit}")]
    EncodedTooLarge {
        /// Size of the encoded message.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The decoded message exceeds the configured cap. For HTTP-Redirect, inflation
    /// stopped as soon as the cap was passed, so a deflate bomb costs at most the cap.
    #[error("decoded message exceeds the limit of {limit} bytes")]
    DecodedTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The DEFLATE stream is corrupt.
    #[error("message is not a valid raw DEFLATE stream")]
    Inflate,
    /// The message is not UTF-8 once decoded.
    #[error("message is not valid UTF-8")]
    NotUtf8,
    /// RelayState is longer than the configured cap (80 bytes by default, as the
    /// bindings specification requires).
    #[error("RelayState is {len} bytes, over the limit of {limit}")]
    RelayStateTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// `Signature` is present without `SigAlg`, or the reverse.
    #[error("redirect binding: Signature and SigAlg must appear together")]
    IncompleteRedirectSignature,
    /// The message must be signed (by configuration) but carries no signature.
    #[error("message is not signed")]
    Unsigned,

    // ----- signatures and algorithms -----
    /// A signature or digest algorithm is not on the caller's allow-list.
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No configured key verified the signature.
    #[error("signature did not verify with any trusted key")]
    SignatureInvalid,

    // ----- metadata -----
    /// The metadata has expired (`validUntil` is in the past).
    #[error("metadata expired at {valid_until}")]
    MetadataExpired {
        /// Its `validUntil`, formatted as `xs:dateTime`.
        valid_until: String,
    },
    /// An `IndexedEndpoint` index is repeated within one role.
    #[error("endpoint index {0} is used twice")]
    DuplicateEndpointIndex(u16),

    // ----- Web Browser SSO profile rules -----
    /// Neither the Response nor the Assertion carries a signature.
    #[error("neither the Response nor the Assertion is signed")]
    NotSigned,
    /// The message's `Version` is not `2.0`.
    #[error("unsupported SAML version {0:?}")]
    UnsupportedVersion(String),
    /// The Response's or the Assertion's Issuer is not the IdP's entity ID.
    #[error("issuer mismatch: expected {expected:?}, found {found:?}")]
    IssuerMismatch {
        /// The configured IdP entity ID.
        expected: String,
        /// What the message names (empty when absent).
        found: String,
    },
    /// The Issuer element has a Format other than `entity`.
    #[error("issuer format {0:?} is not the entity format")]
    IssuerFormat(String),
    /// The Response's Destination is not one of our ACS URLs.
    #[error("destination mismatch: found {found:?}")]
    DestinationMismatch {
        /// The Destination attribute (empty when absent but required).
        found: String,
    },
    /// The Response's top-level status is not Success.
    #[error("status is not success: {code} {sub_code:?} {message:?}")]
    StatusNotSuccess {
        /// The top-level status code URI.
        code: String,
        /// The second-level status code URI, if any.
        sub_code: Option<String>,
        /// The StatusMessage, if any. Shown to an operator, never trusted.
        message: Option<String>,
    },
    /// The Response holds no assertion, or more than one. Exactly one is accepted, so
    /// there is never a choice of which one to trust.
    #[error("response holds {0} assertions; exactly one is required")]
    AssertionCount(usize),
    /// The Response holds an EncryptedAssertion and no decryption key was given.
    #[error("encrypted assertions are not supported here")]
    EncryptedAssertion,
    /// The Subject or its NameID is missing.
    #[error("assertion has no subject NameID")]
    SubjectMissing,
    /// No SubjectConfirmation uses the bearer method.
    #[error("no bearer SubjectConfirmation")]
    BearerConfirmationMissing,
    /// A SubjectConfirmation uses a method other than bearer. Holder-of-key and
    /// sender-vouches are not supported, and a mixed set is refused rather than partly
    /// honoured.
    #[error("unsupported SubjectConfirmation method {0:?}")]
    ConfirmationMethod(String),
    /// The bearer SubjectConfirmationData's Recipient is absent or not our ACS URL.
    #[error("recipient mismatch: found {found:?}")]
    RecipientMismatch {
        /// The Recipient (empty when absent).
        found: String,
    },
    /// The bearer SubjectConfirmationData has no NotOnOrAfter, or it has passed.
    #[error("subject confirmation expired or has no NotOnOrAfter")]
    ConfirmationExpired,
    /// The bearer SubjectConfirmationData has a NotBefore, which the profile forbids
    /// for bearer confirmation, or a NotBefore still in the future.
    #[error("subject confirmation is not yet valid")]
    ConfirmationNotYetValid,
    /// InResponseTo does not match the request we sent (or is present on an unsolicited
    /// response, or absent on a solicited one).
    #[error("InResponseTo mismatch: expected {expected:?}, found {found:?}")]
    InResponseToMismatch {
        /// The outstanding request ID, if any.
        expected: Option<String>,
        /// What the message carries.
        found: Option<String>,
    },
    /// An unsolicited (IdP-initiated) response arrived and the SP does not allow them.
    #[error("unsolicited responses are not allowed")]
    UnsolicitedNotAllowed,
    /// The assertion has no Conditions element (so no audience and no validity window).
    #[error("assertion has no Conditions")]
    ConditionsMissing,
    /// Conditions holds a condition we do not understand. SAML core §2.5.1 makes such an
    /// assertion Indeterminate, and an Indeterminate assertion is not accepted.
    #[error("unknown condition {0}")]
    UnknownCondition(String),
    /// Conditions NotBefore is in the future, beyond the allowed clock skew.
    #[error("assertion is not yet valid")]
    NotYetValid,
    /// Conditions NotOnOrAfter has passed, beyond the allowed clock skew.
    #[error("assertion has expired")]
    Expired,
    /// There is no AudienceRestriction; an assertion for no one in particular could have
    /// been issued to any SP.
    #[error("assertion has no AudienceRestriction")]
    AudienceMissing,
    /// An AudienceRestriction does not name our entity ID.
    #[error("audience restriction does not name us")]
    AudienceMismatch,
    /// The assertion carries no AuthnStatement.
    #[error("assertion has no AuthnStatement")]
    AuthnStatementMissing,
    /// The AuthnStatement's SessionNotOnOrAfter has passed.
    #[error("the IdP session has ended (SessionNotOnOrAfter)")]
    SessionExpired,

    // ----- IdP side: accepting an AuthnRequest -----
    /// The request names no Issuer, or one other than the SP whose metadata was given.
    #[error("request issuer mismatch: expected {expected:?}, found {found:?}")]
    RequestIssuerMismatch {
        /// The SP's entity ID from its metadata.
        expected: String,
        /// The request's Issuer (empty when absent).
        found: String,
    },
    /// The SP's metadata has no SAML 2.0 SPSSODescriptor.
    #[error("the SP's metadata has no SAML 2.0 SP role")]
    SpRoleMissing,
    /// The request's Destination is not one of our SSO URLs (or is missing on a signed
    /// request).
    #[error("request destination mismatch: found {found:?}")]
    RequestDestinationMismatch {
        /// The Destination (empty when absent).
        found: String,
    },
    /// The request was issued too long ago (beyond the maximum age plus skew).
    #[error("the request is too old")]
    RequestExpired,
    /// The request was issued in the future (beyond the skew).
    #[error("the request is not yet valid")]
    RequestNotYetValid,
    /// AssertionConsumerServiceURL is not an ACS location in the SP's metadata. Sending
    /// an assertion anywhere else would hand it to whoever wrote the URL.
    #[error("ACS URL {0:?} is not registered in the SP's metadata")]
    AcsNotRegistered(String),
    /// AssertionConsumerServiceIndex names no ACS in the SP's metadata.
    #[error("ACS index {0} is not in the SP's metadata")]
    AcsIndexUnknown(u16),
    /// The SP's metadata has no usable ACS at all.
    #[error("the SP's metadata has no usable AssertionConsumerService")]
    AcsMissing,
    /// The response binding asked for (or the chosen ACS's binding) is not HTTP-POST, the
    /// only one we answer with.
    #[error("unsupported response binding {0:?}")]
    UnsupportedBinding(String),
    /// NameIDPolicy asks for a format we do not issue (answer with status
    /// InvalidNameIDPolicy).
    #[error("NameID format {0:?} is not supported")]
    NameIdFormatUnsupported(String),

    // ----- single logout -----
    /// A logout message's Issuer is not the peer we expected.
    #[error("logout issuer mismatch: expected {expected:?}, found {found:?}")]
    LogoutIssuerMismatch {
        /// The peer's entity ID.
        expected: String,
        /// The message's Issuer (empty when absent).
        found: String,
    },
    /// A logout message's Destination is not one of our SingleLogoutService URLs.
    #[error("logout destination mismatch: found {found:?}")]
    LogoutDestinationMismatch {
        /// The Destination (empty when absent).
        found: String,
    },
    /// A LogoutRequest's NotOnOrAfter has passed, or it was issued too long ago.
    #[error("the logout request has expired")]
    LogoutExpired,
    /// A logout message was issued in the future (beyond the skew).
    #[error("the logout message is not yet valid")]
    LogoutNotYetValid,

    // ----- inbound signatures -----
    /// Rule: a signature that protects a SAML message or assertion references it by `#ID`
    /// (SAML core §5.4.2). `URI=""` names the whole document, which is not what a SAML
    /// peer signs, so it is refused even where the XML-DSig layer would accept it.
    #[error("the signature does not reference the signed element by #ID")]
    ReferenceNotById,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable SCREAMING_SNAKE code for the failure, for logs, JSON output and tests:
    /// the message text may be reworded, the code is not. Different variants share a code
    /// only where they mean the same failure (a signature value that does not verify,
    /// whether enveloped or over a redirect query).
    pub fn code(&self) -> &'static str {
        use latchkey_xmlsec::Error as X;
        use latchkey_xmlsec::dsig::SignatureError as S;
        use latchkey_xmlsec::xmlenc::EncryptionError as En;
        match self {
            Error::Xml(X::Read(_)) => "XML_REFUSED",
            Error::Xml(X::C14n(_)) => "C14N_FAILED",
            Error::Xml(X::Key(_)) => "KEY_REFUSED",
            Error::Xml(X::Signature(S::BadSignature)) => "SIGNATURE_INVALID",
            Error::Xml(X::Signature(S::DigestMismatch)) => "DIGEST_MISMATCH",
            Error::Xml(X::Signature(S::NoKeyForAlgorithm { .. })) => "NO_KEY_FOR_ALGORITHM",
            Error::Xml(X::Signature(_)) => "SIGNATURE_REFUSED",
            Error::Xml(X::Encryption(En::DecryptionFailed)) => "DECRYPTION_FAILED",
            Error::Xml(X::Encryption(_)) => "ENCRYPTION_REFUSED",
            Error::Xml(_) => "XML_SECURITY_FAILED",
            Error::UnrepresentableChar(_) => "UNREPRESENTABLE_CHAR",
            Error::Random => "RANDOM_FAILED",
            Error::UnexpectedElement { .. } => "UNEXPECTED_ELEMENT",
            Error::MissingElement { .. } => "MISSING_ELEMENT",
            Error::DuplicateElement { .. } => "DUPLICATE_ELEMENT",
            Error::MissingAttribute { .. } => "MISSING_ATTRIBUTE",
            Error::InvalidValue { .. } => "INVALID_VALUE",
            Error::NotTextOnly(_) => "NOT_TEXT_ONLY",
            Error::InvalidDateTime(_) => "INVALID_DATETIME",
            Error::InvalidDuration(_) => "INVALID_DURATION",
            Error::MissingParameter(_) => "MISSING_PARAMETER",
            Error::DuplicateParameter(_) => "DUPLICATE_PARAMETER",
            Error::AmbiguousMessage => "AMBIGUOUS_MESSAGE",
            Error::Base64(_) => "BASE64_INVALID",
            Error::UrlEncoding(_) => "URL_ENCODING_INVALID",
            Error::EncodedTooLarge { .. } => "ENCODED_TOO_LARGE",
            Error::DecodedTooLarge { .. } => "DECODED_TOO_LARGE",
            Error::Inflate => "INFLATE_FAILED",
            Error::NotUtf8 => "NOT_UTF8",
            Error::RelayStateTooLong { .. } => "RELAY_STATE_TOO_LONG",
            Error::IncompleteRedirectSignature => "INCOMPLETE_REDIRECT_SIGNATURE",
            Error::Unsigned => "UNSIGNED",
            Error::AlgorithmNotAllowed(_) => "ALGORITHM_NOT_ALLOWED",
            Error::SignatureInvalid => "SIGNATURE_INVALID",
            Error::MetadataExpired { .. } => "METADATA_EXPIRED",
            Error::DuplicateEndpointIndex(_) => "DUPLICATE_ENDPOINT_INDEX",
            Error::NotSigned => "NOT_SIGNED",
            Error::UnsupportedVersion(_) => "UNSUPPORTED_VERSION",
            Error::IssuerMismatch { .. } => "ISSUER_MISMATCH",
            Error::IssuerFormat(_) => "ISSUER_FORMAT",
            Error::DestinationMismatch { .. } => "DESTINATION_MISMATCH",
            Error::StatusNotSuccess { .. } => "STATUS_NOT_SUCCESS",
            Error::AssertionCount(_) => "ASSERTION_COUNT",
            Error::EncryptedAssertion => "ENCRYPTED_ASSERTION",
            Error::SubjectMissing => "SUBJECT_MISSING",
            Error::BearerConfirmationMissing => "BEARER_CONFIRMATION_MISSING",
            Error::ConfirmationMethod(_) => "CONFIRMATION_METHOD",
            Error::RecipientMismatch { .. } => "RECIPIENT_MISMATCH",
            Error::ConfirmationExpired => "CONFIRMATION_EXPIRED",
            Error::ConfirmationNotYetValid => "CONFIRMATION_NOT_YET_VALID",
            Error::InResponseToMismatch { .. } => "IN_RESPONSE_TO_MISMATCH",
            Error::UnsolicitedNotAllowed => "UNSOLICITED_NOT_ALLOWED",
            Error::ConditionsMissing => "CONDITIONS_MISSING",
            Error::UnknownCondition(_) => "UNKNOWN_CONDITION",
            Error::NotYetValid => "NOT_YET_VALID",
            Error::Expired => "EXPIRED",
            Error::AudienceMissing => "AUDIENCE_MISSING",
            Error::AudienceMismatch => "AUDIENCE_MISMATCH",
            Error::AuthnStatementMissing => "AUTHN_STATEMENT_MISSING",
            Error::SessionExpired => "SESSION_EXPIRED",
            Error::RequestIssuerMismatch { .. } => "REQUEST_ISSUER_MISMATCH",
            Error::SpRoleMissing => "SP_ROLE_MISSING",
            Error::RequestDestinationMismatch { .. } => "REQUEST_DESTINATION_MISMATCH",
            Error::RequestExpired => "REQUEST_EXPIRED",
            Error::RequestNotYetValid => "REQUEST_NOT_YET_VALID",
            Error::AcsNotRegistered(_) => "ACS_NOT_REGISTERED",
            Error::AcsIndexUnknown(_) => "ACS_INDEX_UNKNOWN",
            Error::AcsMissing => "ACS_MISSING",
            Error::UnsupportedBinding(_) => "UNSUPPORTED_BINDING",
            Error::NameIdFormatUnsupported(_) => "NAME_ID_FORMAT_UNSUPPORTED",
            Error::LogoutIssuerMismatch { .. } => "LOGOUT_ISSUER_MISMATCH",
            Error::LogoutDestinationMismatch { .. } => "LOGOUT_DESTINATION_MISMATCH",
            Error::LogoutExpired => "LOGOUT_EXPIRED",
            Error::LogoutNotYetValid => "LOGOUT_NOT_YET_VALID",
            Error::ReferenceNotById => "REFERENCE_NOT_BY_ID",
        }
    }

    /// The rule (or, outside the profile rules, the layer) that refused, in snake_case:
    /// `signature`, `issuer`, `destination`, `status`, `in_response_to`, `assertion`,
    /// `subject`, `subject_confirmation`, `conditions`, `audience`, `authn_statement`,
    /// the IdP's `request_*` and `acs` rules, `logout_*`, or `xml`, `schema`, `binding`,
    /// `metadata`, `encryption`, `build`. Groups codes for an operator who wants to know
    /// which check to look at before reading the detail.
    pub fn rule(&self) -> &'static str {
        use latchkey_xmlsec::Error as X;
        match self {
            Error::Xml(X::Read(_) | X::C14n(_)) => "xml",
            Error::Xml(X::Encryption(_)) | Error::EncryptedAssertion => "encryption",
            Error::Xml(_)
            | Error::AlgorithmNotAllowed(_)
            | Error::SignatureInvalid
            | Error::Unsigned
            | Error::IncompleteRedirectSignature
            | Error::NotSigned
            | Error::ReferenceNotById => "signature",
            Error::UnrepresentableChar(_) | Error::Random => "build",
            Error::UnexpectedElement { .. }
            | Error::MissingElement { .. }
            | Error::DuplicateElement { .. }
            | Error::MissingAttribute { .. }
            | Error::InvalidValue { .. }
            | Error::NotTextOnly(_)
            | Error::InvalidDateTime(_)
            | Error::InvalidDuration(_) => "schema",
            Error::MissingParameter(_)
            | Error::DuplicateParameter(_)
            | Error::AmbiguousMessage
            | Error::Base64(_)
            | Error::UrlEncoding(_)
            | Error::EncodedTooLarge { .. }
            | Error::DecodedTooLarge { .. }
            | Error::Inflate
            | Error::NotUtf8
            | Error::RelayStateTooLong { .. }
            | Error::UnsupportedBinding(_) => "binding",
            Error::MetadataExpired { .. } | Error::DuplicateEndpointIndex(_) => "metadata",
            Error::UnsupportedVersion(_) => "version",
            Error::IssuerMismatch { .. } | Error::IssuerFormat(_) => "issuer",
            Error::DestinationMismatch { .. } => "destination",
            Error::StatusNotSuccess { .. } => "status",
            Error::AssertionCount(_) => "assertion",
            Error::SubjectMissing => "subject",
            Error::BearerConfirmationMissing
            | Error::ConfirmationMethod(_)
            | Error::RecipientMismatch { .. }
            | Error::ConfirmationExpired
            | Error::ConfirmationNotYetValid => "subject_confirmation",
            Error::InResponseToMismatch { .. } | Error::UnsolicitedNotAllowed => "in_response_to",
            Error::ConditionsMissing
            | Error::UnknownCondition(_)
            | Error::NotYetValid
            | Error::Expired => "conditions",
            Error::AudienceMissing | Error::AudienceMismatch => "audience",
            Error::AuthnStatementMissing | Error::SessionExpired => "authn_statement",
            Error::RequestIssuerMismatch { .. } => "request_issuer",
            Error::SpRoleMissing => "sp_metadata",
            Error::RequestDestinationMismatch { .. } => "request_destination",
            Error::RequestExpired | Error::RequestNotYetValid => "request_freshness",
            Error::AcsNotRegistered(_) | Error::AcsIndexUnknown(_) | Error::AcsMissing => "acs",
            Error::NameIdFormatUnsupported(_) => "name_id_policy",
            Error::LogoutIssuerMismatch { .. } => "logout_issuer",
            Error::LogoutDestinationMismatch { .. } => "logout_destination",
            Error::LogoutExpired | Error::LogoutNotYetValid => "logout_freshness",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;
    use latchkey_xmlsec::dsig::SignatureError;
    use latchkey_xmlsec::xmlenc::EncryptionError;

    #[test]
    fn codes_are_screaming_snake_and_rules_snake_case() {
        let samples = [
            Error::Xml(SignatureError::BadSignature.into()),
            Error::Xml(SignatureError::DigestMismatch.into()),
            Error::Xml(SignatureError::Sha1NotAllowed.into()),
            Error::Xml(EncryptionError::DecryptionFailed.into()),
            Error::Base64("SAMLResponse"),
            Error::IssuerMismatch {
                expected: "a".into(),
                found: "b".into(),
            },
            Error::AudienceMismatch,
            Error::Expired,
            Error::ConfirmationExpired,
            Error::AcsNotRegistered("x".into()),
            Error::LogoutExpired,
        ];
        let mut codes = Vec::new();
        for e in &samples {
            let code = e.code();
            assert!(
                code.starts_with(|c: char| c.is_ascii_uppercase())
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            let rule = e.rule();
            assert!(
                !rule.is_empty() && rule.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{rule}"
            );
            codes.push(code);
        }
        // Each sample is a different failure, and so has its own code.
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        // The same failure over either binding shares one code.
        assert_eq!(
            Error::SignatureInvalid.code(),
            Error::Xml(SignatureError::BadSignature.into()).code()
        );
        assert_eq!(Error::Expired.rule(), "conditions");
        assert_eq!(Error::ConfirmationExpired.rule(), "subject_confirmation");
    }
}
