//! The stylesheet and script, compiled into the binary and served with a version in
//! their URL (pages link `…?v={version}`), so a new release is fetched at once.

use axum::http::header;
use axum::response::IntoResponse;

pub const CSS_PATH: &str = "/assets/dashboard.css";
pub const JS_PATH: &str = "/assets/dashboard.js";
pub const CSS_URL: &str = concat!("/assets/dashboard.css?v=", env!("CARGO_PKG_VERSION"));
pub const JS_URL: &str = concat!("/assets/dashboard.js?v=", env!("CARGO_PKG_VERSION"));

const CSS: &str = include_str!("../assets/dashboard.css");
const JS: &str = include_str!("../assets/dashboard.js");
const CACHE: &str = "public, max-age=86400";

pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, CACHE)], CSS)
}

pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, CACHE)], JS)
}

pub const NOT_FOUND_PAGE: &str = concat!(
    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    "<title>Not found · TempoVoice</title><link rel=\"stylesheet\" href=\"/assets/dashboard.css?v=",
    env!("CARGO_PKG_VERSION"),
    "\"></head><body><header class=\"top\"><a class=\"brand\" href=\"/\">TempoVoice</a></header>",
    "<main id=\"main\"><div class=\"panel empty\"><h1>Page not found</h1>",
    "<p>There is nothing at this address.</p><a class=\"button\" href=\"/\">Go to your agents</a></div></main></body></html>"
);
