//! The IdP's page templates (`templates/*.html`), one struct each. Every field is escaped
//! by askama unless the template says otherwise (only `raw.html`, see [`super::html`]).

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
    pub username: &'a str,
    /// Self-service reset is on: offer the link.
    pub reset: bool,
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
