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
    /// The console page to return to after sign-in.
    pub to: Option<&'a str>,
    pub username: &'a str,
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
