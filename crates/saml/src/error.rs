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
    /// The SP has no usable ACS: none takes HTTP-POST, or the one the request names does
    /// not.
    #[error("the SP has no usable (HTTP-POST) AssertionConsumerService")]
    AcsMissing,
    /// The response binding asked for is not HTTP-POST, the only one we answer with.
    #[error("unsupported response binding {0:?}")]
    UnsupportedBinding(String),

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

crate::stable_codes! {
    /// The stable codes of SAML failures: what an SP (the toolkit and the pages built on it)
    /// shows, logs and audits, and what `latchkey saml verify` prints. One code per failure;
    /// the detail (which element, which value) goes to the log, never into the code.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[non_exhaustive]
    pub enum Code {
        /// The hardened XML reader refused the document (DOCTYPE, a size or depth cap, not
        /// well-formed).
        XmlRefused = "XML_REFUSED",
        /// The document could not be canonicalized for signing or verification.
        C14nFailed = "C14N_FAILED",
        /// A configured key or certificate could not be used.
        KeyRefused = "KEY_REFUSED",
        /// A signature value did not verify with any trusted key (enveloped, or over a
        /// redirect query).
        SignatureInvalid = "SIGNATURE_INVALID",
        /// The signed element was changed after signing: its digest does not match the one
        /// in the signature.
        DigestMismatch = "DIGEST_MISMATCH",
        /// A signature references what it protects by something other than `#ID` (an
        /// empty `URI=""` naming the whole document): refused for SAML messages and
        /// assertions (core 5.4.2).
        ReferenceNotById = "REFERENCE_NOT_BY_ID",
        /// No trusted key can verify a signature of the algorithm used.
        NoKeyForAlgorithm = "NO_KEY_FOR_ALGORITHM",
        /// The signature's shape was refused before any key was tried (reference, transforms,
        /// an ID that occurs more than once, a disallowed algorithm).
        SignatureRefused = "SIGNATURE_REFUSED",
        /// An encrypted assertion could not be decrypted (one answer for every cause, so no
        /// padding oracle).
        DecryptionFailed = "DECRYPTION_FAILED",
        /// The encryption's shape or algorithms were refused before decrypting.
        EncryptionRefused = "ENCRYPTION_REFUSED",
        /// Another failure of the XML security layer.
        XmlSecurityFailed = "XML_SECURITY_FAILED",
        /// A value holds a character XML 1.0 cannot carry, so the message was not built.
        UnrepresentableChar = "UNREPRESENTABLE_CHAR",
        /// The random number generator failed while making an ID.
        RandomFailed = "RANDOM_FAILED",
        /// The message is not the SAML element expected here.
        UnexpectedElement = "UNEXPECTED_ELEMENT",
        /// A required element is absent.
        MissingElement = "MISSING_ELEMENT",
        /// An element that may appear once appears twice (how wrapping attacks make two
        /// readers disagree).
        DuplicateElement = "DUPLICATE_ELEMENT",
        /// A required attribute is absent.
        MissingAttribute = "MISSING_ATTRIBUTE",
        /// A value does not have the type the schema gives it.
        InvalidValue = "INVALID_VALUE",
        /// An element that must hold text only holds elements.
        NotTextOnly = "NOT_TEXT_ONLY",
        /// A timestamp is not a valid xs:dateTime.
        InvalidDatetime = "INVALID_DATETIME",
        /// A duration is not a valid xs:duration.
        InvalidDuration = "INVALID_DURATION",
        /// A binding parameter (SAMLResponse, SAMLRequest...) is missing.
        MissingParameter = "MISSING_PARAMETER",
        /// A binding parameter appears twice, so which copy was signed is ambiguous.
        DuplicateParameter = "DUPLICATE_PARAMETER",
        /// Both SAMLRequest and SAMLResponse are present.
        AmbiguousMessage = "AMBIGUOUS_MESSAGE",
        /// A binding parameter is not valid base64.
        Base64Invalid = "BASE64_INVALID",
        /// A binding parameter is not valid URL encoding or UTF-8.
        UrlEncodingInvalid = "URL_ENCODING_INVALID",
        /// The encoded message is over the size cap; it was not decoded.
        EncodedTooLarge = "ENCODED_TOO_LARGE",
        /// The decoded message is over the size cap (inflation stopped at the cap).
        DecodedTooLarge = "DECODED_TOO_LARGE",
        /// The DEFLATE stream is corrupt.
        InflateFailed = "INFLATE_FAILED",
        /// The decoded message is not UTF-8.
        NotUtf8 = "NOT_UTF8",
        /// RelayState is over its cap (80 bytes by default).
        RelayStateTooLong = "RELAY_STATE_TOO_LONG",
        /// A redirect carries Signature without SigAlg, or the reverse.
        IncompleteRedirectSignature = "INCOMPLETE_REDIRECT_SIGNATURE",
        /// The message carries no signature where one is required (enveloped or over a
        /// redirect query).
        NotSigned = "NOT_SIGNED",
        /// A signature or digest algorithm is not on the allow-list.
        AlgorithmNotAllowed = "ALGORITHM_NOT_ALLOWED",
        /// The peer's metadata is past its validUntil.
        MetadataExpired = "METADATA_EXPIRED",
        /// The metadata uses one endpoint index twice.
        DuplicateEndpointIndex = "DUPLICATE_ENDPOINT_INDEX",
        /// The message's SAML version is not 2.0.
        UnsupportedVersion = "UNSUPPORTED_VERSION",
        /// The Response or Assertion names an issuer other than the trusted IdP.
        IssuerMismatch = "ISSUER_MISMATCH",
        /// The Issuer's Format is not the entity format.
        IssuerFormat = "ISSUER_FORMAT",
        /// The Response is addressed (Destination) to another URL.
        DestinationMismatch = "DESTINATION_MISMATCH",
        /// The IdP answered with a status other than Success: it did not sign the person in.
        StatusNotSuccess = "STATUS_NOT_SUCCESS",
        /// The Response holds no assertion, or more than one.
        AssertionCount = "ASSERTION_COUNT",
        /// The assertion is encrypted and no decryption key is configured.
        EncryptedAssertion = "ENCRYPTED_ASSERTION",
        /// The assertion has no Subject NameID.
        SubjectMissing = "SUBJECT_MISSING",
        /// No SubjectConfirmation uses the bearer method.
        BearerConfirmationMissing = "BEARER_CONFIRMATION_MISSING",
        /// A SubjectConfirmation uses a method other than bearer.
        ConfirmationMethod = "CONFIRMATION_METHOD",
        /// The bearer confirmation's Recipient is not our ACS URL.
        RecipientMismatch = "RECIPIENT_MISMATCH",
        /// The bearer confirmation has passed its NotOnOrAfter, or has none.
        ConfirmationExpired = "CONFIRMATION_EXPIRED",
        /// The bearer confirmation has a NotBefore (or one in the future).
        ConfirmationNotYetValid = "CONFIRMATION_NOT_YET_VALID",
        /// InResponseTo does not answer the request we sent.
        InResponseToMismatch = "IN_RESPONSE_TO_MISMATCH",
        /// An IdP-initiated response arrived and this SP accepts only its own requests'.
        UnsolicitedNotAllowed = "UNSOLICITED_NOT_ALLOWED",
        /// The assertion has no Conditions.
        ConditionsMissing = "CONDITIONS_MISSING",
        /// Conditions holds a condition we do not understand, so the assertion is
        /// Indeterminate.
        UnknownCondition = "UNKNOWN_CONDITION",
        /// The assertion is not valid yet (NotBefore beyond the allowed clock skew).
        NotYetValid = "NOT_YET_VALID",
        /// The assertion has expired (NotOnOrAfter beyond the allowed clock skew).
        Expired = "EXPIRED",
        /// The assertion has no AudienceRestriction, so it could have been issued to any SP.
        AudienceMissing = "AUDIENCE_MISSING",
        /// The AudienceRestriction does not name this SP: the assertion was for another one.
        AudienceMismatch = "AUDIENCE_MISMATCH",
        /// The assertion carries no AuthnStatement.
        AuthnStatementMissing = "AUTHN_STATEMENT_MISSING",
        /// The IdP session has ended (SessionNotOnOrAfter has passed).
        SessionExpired = "SESSION_EXPIRED",
        /// An AuthnRequest names no issuer, or not the SP whose metadata was given.
        RequestIssuerMismatch = "REQUEST_ISSUER_MISMATCH",
        /// The SP's metadata has no SAML 2.0 SP role.
        SpRoleMissing = "SP_ROLE_MISSING",
        /// An AuthnRequest is addressed to another SSO URL.
        RequestDestinationMismatch = "REQUEST_DESTINATION_MISMATCH",
        /// An AuthnRequest was issued too long ago (beyond its maximum age plus skew).
        AuthnRequestExpired = "AUTHN_REQUEST_EXPIRED",
        /// An AuthnRequest was issued in the future (beyond the skew).
        AuthnRequestNotYetValid = "AUTHN_REQUEST_NOT_YET_VALID",
        /// The requested ACS URL is not in the SP's metadata.
        AcsNotRegistered = "ACS_NOT_REGISTERED",
        /// The requested ACS index is not in the SP's metadata.
        AcsIndexUnknown = "ACS_INDEX_UNKNOWN",
        /// The SP has no usable ACS: none takes HTTP-POST, or not the one requested.
        AcsMissing = "ACS_MISSING",
        /// The response binding asked for is not HTTP-POST.
        UnsupportedBinding = "UNSUPPORTED_BINDING",
        /// A logout message comes from an issuer other than the expected peer.
        LogoutIssuerMismatch = "LOGOUT_ISSUER_MISMATCH",
        /// A logout message is addressed to another SingleLogoutService URL.
        LogoutDestinationMismatch = "LOGOUT_DESTINATION_MISMATCH",
        /// A LogoutRequest has passed its NotOnOrAfter, or was issued too long ago.
        LogoutExpired = "LOGOUT_EXPIRED",
        /// A logout message was issued in the future (beyond the skew).
        LogoutNotYetValid = "LOGOUT_NOT_YET_VALID",
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The failure's stable code (see [`Code`]). Different variants share a code only
    /// where they mean the same failure over two bindings: a signature value that does not
    /// verify (enveloped or over a redirect query), a message that carries no signature.
    pub fn code(&self) -> Code {
        use latchkey_xmlsec::Error as X;
        use latchkey_xmlsec::dsig::SignatureError as S;
        use latchkey_xmlsec::xmlenc::EncryptionError as En;
        match self {
            Error::Xml(X::Read(_)) => Code::XmlRefused,
            Error::Xml(X::C14n(_)) => Code::C14nFailed,
            Error::Xml(X::Key(_)) => Code::KeyRefused,
            Error::Xml(X::Signature(S::BadSignature)) => Code::SignatureInvalid,
            Error::Xml(X::Signature(S::DigestMismatch)) => Code::DigestMismatch,
            Error::Xml(X::Signature(S::NoKeyForAlgorithm { .. })) => Code::NoKeyForAlgorithm,
            Error::Xml(X::Signature(_)) => Code::SignatureRefused,
            Error::Xml(X::Encryption(En::DecryptionFailed)) => Code::DecryptionFailed,
            Error::Xml(X::Encryption(_)) => Code::EncryptionRefused,
            Error::Xml(_) => Code::XmlSecurityFailed,
            Error::UnrepresentableChar(_) => Code::UnrepresentableChar,
            Error::Random => Code::RandomFailed,
            Error::UnexpectedElement { .. } => Code::UnexpectedElement,
            Error::MissingElement { .. } => Code::MissingElement,
            Error::DuplicateElement { .. } => Code::DuplicateElement,
            Error::MissingAttribute { .. } => Code::MissingAttribute,
            Error::InvalidValue { .. } => Code::InvalidValue,
            Error::NotTextOnly(_) => Code::NotTextOnly,
            Error::InvalidDateTime(_) => Code::InvalidDatetime,
            Error::InvalidDuration(_) => Code::InvalidDuration,
            Error::MissingParameter(_) => Code::MissingParameter,
            Error::DuplicateParameter(_) => Code::DuplicateParameter,
            Error::AmbiguousMessage => Code::AmbiguousMessage,
            Error::Base64(_) => Code::Base64Invalid,
            Error::UrlEncoding(_) => Code::UrlEncodingInvalid,
            Error::EncodedTooLarge { .. } => Code::EncodedTooLarge,
            Error::DecodedTooLarge { .. } => Code::DecodedTooLarge,
            Error::Inflate => Code::InflateFailed,
            Error::NotUtf8 => Code::NotUtf8,
            Error::RelayStateTooLong { .. } => Code::RelayStateTooLong,
            Error::IncompleteRedirectSignature => Code::IncompleteRedirectSignature,
            Error::Unsigned | Error::NotSigned => Code::NotSigned,
            Error::AlgorithmNotAllowed(_) => Code::AlgorithmNotAllowed,
            Error::SignatureInvalid => Code::SignatureInvalid,
            Error::MetadataExpired { .. } => Code::MetadataExpired,
            Error::DuplicateEndpointIndex(_) => Code::DuplicateEndpointIndex,
            Error::UnsupportedVersion(_) => Code::UnsupportedVersion,
            Error::IssuerMismatch { .. } => Code::IssuerMismatch,
            Error::IssuerFormat(_) => Code::IssuerFormat,
            Error::DestinationMismatch { .. } => Code::DestinationMismatch,
            Error::StatusNotSuccess { .. } => Code::StatusNotSuccess,
            Error::AssertionCount(_) => Code::AssertionCount,
            Error::EncryptedAssertion => Code::EncryptedAssertion,
            Error::SubjectMissing => Code::SubjectMissing,
            Error::BearerConfirmationMissing => Code::BearerConfirmationMissing,
            Error::ConfirmationMethod(_) => Code::ConfirmationMethod,
            Error::RecipientMismatch { .. } => Code::RecipientMismatch,
            Error::ConfirmationExpired => Code::ConfirmationExpired,
            Error::ConfirmationNotYetValid => Code::ConfirmationNotYetValid,
            Error::InResponseToMismatch { .. } => Code::InResponseToMismatch,
            Error::UnsolicitedNotAllowed => Code::UnsolicitedNotAllowed,
            Error::ConditionsMissing => Code::ConditionsMissing,
            Error::UnknownCondition(_) => Code::UnknownCondition,
            Error::NotYetValid => Code::NotYetValid,
            Error::Expired => Code::Expired,
            Error::AudienceMissing => Code::AudienceMissing,
            Error::AudienceMismatch => Code::AudienceMismatch,
            Error::AuthnStatementMissing => Code::AuthnStatementMissing,
            Error::SessionExpired => Code::SessionExpired,
            Error::RequestIssuerMismatch { .. } => Code::RequestIssuerMismatch,
            Error::SpRoleMissing => Code::SpRoleMissing,
            Error::RequestDestinationMismatch { .. } => Code::RequestDestinationMismatch,
            Error::RequestExpired => Code::AuthnRequestExpired,
            Error::RequestNotYetValid => Code::AuthnRequestNotYetValid,
            Error::AcsNotRegistered(_) => Code::AcsNotRegistered,
            Error::AcsIndexUnknown(_) => Code::AcsIndexUnknown,
            Error::AcsMissing => Code::AcsMissing,
            Error::UnsupportedBinding(_) => Code::UnsupportedBinding,
            Error::LogoutIssuerMismatch { .. } => Code::LogoutIssuerMismatch,
            Error::LogoutDestinationMismatch { .. } => Code::LogoutDestinationMismatch,
            Error::LogoutExpired => Code::LogoutExpired,
            Error::LogoutNotYetValid => Code::LogoutNotYetValid,
            Error::ReferenceNotById => Code::ReferenceNotById,
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
            Error::LogoutIssuerMismatch { .. } => "logout_issuer",
            Error::LogoutDestinationMismatch { .. } => "logout_destination",
            Error::LogoutExpired | Error::LogoutNotYetValid => "logout_freshness",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Code, Error};
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
            let code = e.code().as_str();
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
        // So does a missing signature.
        assert_eq!(Error::Unsigned.code(), Error::NotSigned.code());
        assert_eq!(Error::Expired.rule(), "conditions");
        assert_eq!(Error::ConfirmationExpired.rule(), "subject_confirmation");
    }

    #[test]
    fn every_code_is_distinct_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} is declared twice");
            assert!(!code.meaning().is_empty(), "{code} has no meaning");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
        }
        // The IdP's "request too old" is not the SP's pending login that expired.
        assert_eq!(
            Error::RequestExpired.code().as_str(),
            "AUTHN_REQUEST_EXPIRED"
        );
        assert_eq!(
            Code::AudienceMismatch.meaning(),
            "The AudienceRestriction does not name this SP: the assertion was for another one."
        );
    }
}
