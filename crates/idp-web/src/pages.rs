//! The IdP's page templates (`templates/*.html`), one struct each. Every field is escaped
//! by askama.

use askama::Template;

/// GET /login, and the form again after a refusal.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub title: &'a str,
    /// The application a parked sign-in is for.
    pub continuing_to: Option<String>,
    pub message: Option<&'a str>,
    pub csrf: &'a str,
    pub cont: Option<&'a str>,
    /// The console page to return to after sign-in.
    pub to: Option<&'a str>,
    pub username: &'a str,
    /// Self-service reset is on: offer the link.
    pub reset: bool,
    /// Passkeys are on: the "sign in with a passkey" button and its script.
    pub passkeys: bool,
}

/// GET /logout: a confirmation form.
#[derive(Template)]
#[template(path = "sign_out.html")]
pub(crate) struct SignOutPage<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
}

/// "Continue to <app>?" for a launch from another site's link.
#[derive(Template)]
#[template(path = "confirm_launch.html")]
pub(crate) struct ConfirmLaunchPage<'a> {
    pub title: &'a str,
    pub app_name: &'a str,
    pub app_id: String,
    pub csrf: &'a str,
}

/// Every failure: what happened in words, the code, the operation ID.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub code: &'a str,
    pub operation_id: &'a str,
    /// Signed in but not allowed: offers the way out.
    pub denied: bool,
}

/// GET /portal
#[derive(Template)]
#[template(path = "portal.html")]
pub(crate) struct PortalPage<'a> {
    pub title: &'a str,
    pub shown_name: &'a str,
    pub username: &'a str,
    /// Whether the search form is shown (more than a dozen applications).
    pub searchable: bool,
    pub query: &'a str,
    pub tiles: Vec<Tile>,
    pub csrf: &'a str,
}

/// One application on the portal.
#[derive(Debug, Clone)]
pub(crate) struct Tile {
    pub href: String,
    pub name: String,
    pub description: Option<String>,
    /// The application's icon, if it has one.
    pub icon: Option<String>,
    /// Shown instead of an icon: the name's first letter.
    pub monogram: String,
    /// The monogram's colour class (`hue-N`), derived from the name.
    pub hue: u8,
}

/// The single-logout page with one frame per application.
#[derive(Template)]
#[template(path = "logout_frames.html")]
pub(crate) struct LogoutFramesPage<'a> {
    pub title: &'a str,
    /// Each application's name and its hop's key.
    pub hops: Vec<(&'a str, &'a str)>,
    /// Where the page moves on to.
    pub done: &'a str,
    pub wait_seconds: u32,
}

/// The small page a single-logout frame ends on (its `latchkey-slo` marker tells the frames
/// page's script that the frame is back).
#[derive(Template)]
#[template(path = "logout_status.html")]
pub(crate) struct LogoutStatusPage<'a> {
    pub title: &'a str,
    /// The application the text is about, if known.
    pub name: Option<&'a str>,
    pub text: &'a str,
}

/// The end of a logout: each application under what became of it.
#[derive(Template)]
#[template(path = "logout_done.html")]
pub(crate) struct LogoutDonePage<'a> {
    pub title: &'a str,
    /// Whether a Latchkey session was ended (or none was asked of us).
    pub ended: bool,
    pub groups: Vec<OutcomeGroup<'a>>,
}

/// Applications that share an outcome, under the sentence that says which.
pub(crate) struct OutcomeGroup<'a> {
    pub title: &'a str,
    pub names: Vec<&'a str>,
}

/// A page that sends the browser on to another site's logout endpoint by a meta refresh (a
/// new navigation, outside the posted form's `form-action`; see `logout::after_form`).
#[derive(Template)]
#[template(path = "logout_onward.html")]
pub(crate) struct LogoutOnwardPage<'a> {
    pub title: &'a str,
    pub url: &'a str,
}

/// GET /reset: ask for a reset link; after a request, the same form with the one answer.
#[derive(Template)]
#[template(path = "reset_request.html")]
pub(crate) struct ResetRequestPage<'a> {
    pub title: &'a str,
    /// A request was taken (whatever the name).
    pub sent: bool,
    pub message: Option<&'a str>,
    pub name: &'a str,
    pub csrf: &'a str,
}

/// The set-password form of a reset or an invitation link.
#[derive(Template)]
#[template(path = "set_password.html")]
pub(crate) struct SetPasswordPage<'a> {
    pub title: &'a str,
    /// Whose link, and what it does.
    pub intro: &'a str,
    pub message: Option<&'a str>,
    /// zxcvbn's advice on the password just refused.
    pub hint: Option<&'a latchkey_idp::password::StrengthHint>,
    /// Where the form posts (the link's own path).
    pub action: &'a str,
    /// For password managers (a hidden field).
    pub username: &'a str,
    pub min_length: usize,
    /// The account has a second factor: a reset asks for a code.
    pub ask_factor: bool,
    pub button: &'a str,
    pub csrf: &'a str,
}

/// A short outcome: one message and where to go next.
#[derive(Template)]
#[template(path = "notice.html")]
pub(crate) struct NoticePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// A remark under it (a strength hint).
    pub hint: Option<&'a str>,
    pub link_href: &'a str,
    pub link_text: &'a str,
}

/// A refused second-factor attempt, shown on its form: what to do, the code, the ID.
pub(crate) struct Refusal {
    pub message: &'static str,
    pub code: &'static str,
    pub operation_id: String,
}

/// GET /login/mfa: the second step, or a step-up.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub(crate) struct SecondFactorPage<'a> {
    pub title: &'a str,
    /// The application a parked sign-in is for.
    pub continuing_to: Option<String>,
    pub username: &'a str,
    pub refusal: Option<Refusal>,
    pub csrf: &'a str,
    pub cont: Option<&'a str>,
    pub then: Option<&'a str>,
    /// The user has a TOTP app: the code form.
    pub totp: bool,
    /// The user has a passkey or security key (and passkeys are on): the button.
    pub security_key: bool,
    /// The user has unused recovery codes: the other form.
    pub recovery: bool,
    /// The recovery-code form is the one that was just refused: shown open.
    pub recovery_open: bool,
}

/// GET /mfa/totp: a new TOTP app, its QR code and secret, and the form confirming it.
#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub(crate) struct TotpEnrolPage<'a> {
    pub title: &'a str,
    pub continuing_to: Option<String>,
    /// A rule requires a second factor of this sign-in (the portal's, or the global one).
    pub required: bool,
    pub refusal: Option<Refusal>,
    /// The QR code, an SVG element made by the `qrcode` crate from the otpauth URI.
    pub qr_svg: &'a str,
    /// The secret in base32, in groups of four.
    pub secret: &'a str,
    pub factor_id: &'a str,
    pub csrf: &'a str,
    pub cont: Option<&'a str>,
    pub then: Option<&'a str>,
}

/// GET /mfa/recovery-codes, and new codes shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryCodesPage<'a> {
    pub title: &'a str,
    pub refusal: Option<Refusal>,
    /// New codes, to show this once; empty: the count and the form.
    pub codes: Vec<String>,
    pub remaining: i64,
    pub csrf: &'a str,
    pub then: Option<&'a str>,
    /// Where "continue" goes.
    pub next: &'a str,
}

/// GET /webauthn: add a key when signed in; sign in with a passkey either way.
#[derive(Template)]
#[template(path = "webauthn.html")]
pub(crate) struct WebauthnPage<'a> {
    pub title: &'a str,
    /// The signed-in user, if any.
    pub username: Option<&'a str>,
    /// Whether this session may add a key (see [`crate::webauthn`]'s step-up rule).
    pub may_enrol: bool,
}

/// GET /account: the signed-in user's password, factors, sessions and recent sign-ins.
#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage<'a> {
    pub title: &'a str,
    pub shown_name: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    /// What the last change did (one of the page's own sentences).
    pub notice: Option<&'static str>,
    pub refusal: Option<AccountRefusal>,
    /// zxcvbn's advice on a refused new password.
    pub hint: Option<latchkey_idp::password::StrengthHint>,
    pub min_length: usize,
    /// Factors may be changed from this session (see `mfa::Available::step_up_needed`).
    pub may_change: bool,
    /// Passkeys are on: offer `/webauthn`.
    pub passkeys: bool,
    pub factors: Vec<FactorRow>,
    /// Unused recovery codes, for a user who has a factor.
    pub recovery_remaining: Option<i64>,
    pub sessions: Vec<SessionRow>,
    pub sign_ins: Vec<SignInRow>,
}

/// A refused change on the account page: the field at fault, what to do, the code, the ID.
pub(crate) struct AccountRefusal {
    pub field: Option<&'static str>,
    pub message: String,
    pub code: &'static str,
    pub operation_id: String,
}

/// A TOTP app or WebAuthn credential on the account page.
pub(crate) struct FactorRow {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// One of the user's sessions on the account page.
pub(crate) struct SessionRow {
    pub index: String,
    pub created: String,
    pub last_seen: String,
    pub address: String,
    pub browser: String,
    pub methods: String,
    /// The session this page was asked from.
    pub current: bool,
}

/// A sign-in (or a failed one, or a step-up) from the audit log.
pub(crate) struct SignInRow {
    pub at: String,
    pub what: &'static str,
    pub methods: String,
    pub address: String,
}
