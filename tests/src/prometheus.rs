//! Reading `GET /metrics`: the Prometheus text exposition, one sample a line.

use reqwest::StatusCode;

use crate::client::Client;

/// `GET /metrics` with `token` (an ADMIN's or the scrapers'): status and text.
pub async fn scrape(api: impl Into<Client>, token: Option<&str>) -> (StatusCode, String) {
    let api = api.into();
    let mut req = api.http.get(format!("{}/metrics", api.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("GET /metrics");
    (res.status(), res.text().await.unwrap_or_default())
}

/// The value of the sample whose line starts with `series` (its name and labels, exactly
/// as exposed; an unlabelled series is just the name).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn samples_are_found_by_series() {
        let text = "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n\
                    x_total_more 9\ny{route=\"/a\"} 1.5\n";
        assert_eq!(sample(text, "x_total"), Some(3.0));
        assert_eq!(sample(text, "y{route=\"/a\"}"), Some(1.5));
        assert_eq!(sample(text, "y"), None);
        assert_eq!(sample(text, "z"), None);
    }
}
