//! `GET /console`: the dispatcher and officer console (ADR 0029), three files embedded
//! in the binary (`crates/precinct-api/console/`): it works offline and from a fresh
//! clone, and loads nothing from any other host (its CSP,
//! [`crate::middleware::CONSOLE_CSP`], allows only this origin). It is a client of
//! the API like any other: it signs in with `POST /session` and calls the documented
//! endpoints with the session cookie. Not part of the OpenAPI document.
//!
//! With `PRECINCT_MAP_TILES` set ([`MapTiles`]), the map draws that tile layer, and the
//! console's CSP allows images from that one origin besides its own.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::middleware::CONSOLE_CSP;
use crate::AppState;

/// A tile layer for the console's map: a URL template with `{z}`, `{x}` and `{y}`
/// (`PRECINCT_MAP_TILES`, e.g. `https://tile.example.org/{z}/{x}/{y}.png`: Web Mercator
/// tiles of 256 px). HTTPS, or plain HTTP to a loopback host (development, tests); only
/// characters of a URL path (no quote, space, comma or semicolon: the origin goes into
/// the CSP as it is); at most 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTiles {
    template: String,
    origin: String,
}

impl MapTiles {
    pub fn parse(template: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("PRECINCT_MAP_TILES {why}"));
        if template.len() > 512 {
            return bad("is longer than 512 bytes");
        }
        let Some((scheme, rest)) = template.split_once("://") else {
            return bad("must be an https:// URL template");
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => authority,
        };
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
        match scheme {
            "https" => {}
            "http" if loopback => {}
            _ => return bad("must be https:// (plain http:// only to a loopback host)"),
        }
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        if !host_ok || authority.contains('@') {
            return bad("has no plain host");
        }
        let path_ok = path.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '/' | '.' | '-' | '_' | '~' | '{' | '}' | '?' | '&' | '=' | '%'
                )
        });
        if !path_ok {
            return bad("may hold only the characters of a URL path and query");
        }
        for part in ["{z}", "{x}", "{y}"] {
            if path.matches(part).count() != 1 {
                return bad("must hold each of {z}, {x} and {y} once");
            }
        }
        if path
            .replace("{z}", "")
            .replace("{x}", "")
            .replace("{y}", "")
            .contains(['{', '}'])
        {
            return bad("may hold no placeholder but {z}, {x} and {y}");
        }
        Ok(Self {
            template: template.to_string(),
            origin: format!("{scheme}://{authority}"),
        })
    }

    /// The URL template, as configured.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// `scheme://host[:port]` of the tiles.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The console's Content-Security-Policy: [`CONSOLE_CSP`], with the tile origin added
/// to `img-src` when a tile layer is configured.
pub fn csp(tiles: Option<&MapTiles>) -> String {
    match tiles {
        None => CONSOLE_CSP.to_string(),
        Some(t) => {
            CONSOLE_CSP.replacen("img-src 'self'", &format!("img-src 'self' {}", t.origin), 1)
        }
    }
}

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
}

/// An embedded file under the console's CSP (which the security-headers layer keeps).
fn asset(state: &AppState, content_type: &'static str, body: &'static str) -> Response {
    let policy = HeaderValue::from_str(&csp(state.config.map_tiles.as_ref()))
        .unwrap_or_else(|_| HeaderValue::from_static(CONSOLE_CSP));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, policy),
        ],
        body,
    )
        .into_response()
}

async fn index(State(state): State<AppState>) -> Response {
    asset(&state, "text/html; charset=utf-8", INDEX)
}

async fn script(State(state): State<AppState>) -> Response {
    asset(&state, "text/javascript; charset=utf-8", SCRIPT)
}

async fn style(State(state): State<AppState>) -> Response {
    asset(&state, "text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_template_is_https_or_loopback_with_its_three_placeholders_only() {
        let t = MapTiles::parse("https://tile.example.org/{z}/{x}/{y}.png").expect("valid");
        assert_eq!(t.origin(), "https://tile.example.org");
        let local =
            MapTiles::parse("http://127.0.0.1:8081/t/{z}/{x}/{y}.png?key=a-b").expect("valid");
        assert_eq!(local.origin(), "http://127.0.0.1:8081");
        for bad in [
            "http://tile.example.org/{z}/{x}/{y}.png",
            "tile.example.org/{z}/{x}/{y}.png",
            "https://tile.example.org/{z}/{x}.png",
            "https://tile.example.org/{z}/{x}/{y}/{y}.png",
            "https://tile.example.org/{z}/{x}/{y}/{s}.png",
            "https://tile.example.org/{z}/{x}/{y}.png; script-src *",
            "https://tile.example.org/{z}/{x}/{y}.png'",
            "https://a b/{z}/{x}/{y}.png",
            "https://user@tile.example.org/{z}/{x}/{y}.png",
            "https:///{z}/{x}/{y}.png",
            "javascript://x/{z}/{x}/{y}",
        ] {
            assert!(MapTiles::parse(bad).is_err(), "{bad}");
        }
        assert!(MapTiles::parse(&format!(
            "https://t.example/{}{{z}}/{{x}}/{{y}}",
            "a".repeat(600)
        ))
        .is_err());
    }

    #[test]
    fn the_console_csp_allows_the_tile_origin_only_when_configured() {
        assert_eq!(csp(None), CONSOLE_CSP);
        let t = MapTiles::parse("https://tile.example.org/{z}/{x}/{y}.png").expect("valid");
        let with = csp(Some(&t));
        assert!(
            with.contains("img-src 'self' https://tile.example.org;"),
            "{with}"
        );
        assert_eq!(with.replace(" https://tile.example.org", ""), CONSOLE_CSP);
    }
}
