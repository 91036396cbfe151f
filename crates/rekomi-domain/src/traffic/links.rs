//! Pure rules of links: where a Short link redirects, and what a click keeps of the visit
//! (referrer host, UTM fields, sub-id).

use crate::programs::LandingUrl;
use crate::traffic::model::ClickId;

/// The query parameter naming the referral (the spec's default attribution parameter).
pub const VIA: &str = "via";
/// The query parameter carrying the click id to the landing page, where the loader keeps it.
pub const CLICK_PARAM: &str = "rk_click";
/// Longest value kept of a UTM field or sub-id.
const MAX_FIELD: usize = 255;

/// The URL a Short link redirects to: the landing URL with its own query kept, then the
/// visitor's extra parameters (`sub1`, UTM, …) in the order they came, then `via=<slug>` and,
/// when the click was recorded, `rk_click=<id>`. A `via` or `rk_click` in the landing URL or
/// the visitor's query is replaced, so the referral cannot be forged through the link.
pub fn redirect_url(landing: &LandingUrl, slug: &str, click: Option<ClickId>, extra: &[(String, String)]) -> String {
    let mut url = landing.as_url().clone();
    let kept: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| !is_referral_param(k)).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in kept.iter().chain(extra.iter().filter(|(k, _)| !is_referral_param(k))) {
            query.append_pair(k, v);
        }
        query.append_pair(VIA, slug);
        if let Some(id) = click {
            query.append_pair(CLICK_PARAM, &id.to_string());
        }
    }
    url.into()
}

fn is_referral_param(key: &str) -> bool {
    key == VIA || key == CLICK_PARAM
}

/// The host of a `Referer`, lower-case, or `(direct)` when there is none or it is not a URL.
pub fn referrer_host(referrer: Option<&str>) -> String {
    referrer
        .and_then(|r| url::Url::parse(r).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "(direct)".to_owned())
}

/// The first non-empty value of `key` in `params`, trimmed and cut to 255 characters.
pub fn param(params: &[(String, String)], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| {
        params
            .iter()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim().chars().filter(|c| !c.is_control()).take(MAX_FIELD).collect())
    })
}

/// The affiliate's sub-id parameter names, in precedence order.
pub const SUB_ID_PARAMS: &[&str] = &["sub1", "sub_id", "subid"];

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn short_links_redirect_to_the_landing_page_with_the_referral_and_the_visitors_extras() {
        let click = ClickId::from_uuid(Uuid::from_u128(1));
        let id = click.to_string();
        // (landing URL, visitor's query, recorded?) -> Location
        type Row = (&'static str, Vec<(String, String)>, bool, String);
        let table: Vec<Row> = vec![
            ("https://brand.com/", vec![], true, format!("https://brand.com/?via=jane&rk_click={id}")),
            ("https://brand.com", vec![], false, "https://brand.com/?via=jane".to_owned()),
            (
                "https://brand.com/pricing?plan=pro",
                pairs(&[("sub1", "yt-42"), ("utm_source", "youtube")]),
                true,
                format!("https://brand.com/pricing?plan=pro&sub1=yt-42&utm_source=youtube&via=jane&rk_click={id}"),
            ),
            // A forged referral in the landing URL or the visitor's query is replaced.
            (
                "https://brand.com/?via=someone-else",
                pairs(&[("via", "mallory"), ("rk_click", "rkc_forged")]),
                true,
                format!("https://brand.com/?via=jane&rk_click={id}"),
            ),
            // Values are encoded.
            ("https://brand.com/", pairs(&[("q", "a b&c=d")]), false, "https://brand.com/?q=a+b%26c%3Dd&via=jane".to_owned()),
        ];
        for (i, (landing, extra, recorded, want)) in table.into_iter().enumerate() {
            let landing = LandingUrl::parse(landing).unwrap();
            assert_eq!(redirect_url(&landing, "jane", recorded.then_some(click), &extra), want, "row {i}");
        }
    }

    #[test]
    fn referrer_hosts_are_lower_case_hosts_or_direct() {
        for (referrer, want) in [
            (None, "(direct)"),
            (Some(""), "(direct)"),
            (Some("not a url"), "(direct)"),
            (Some("https://WWW.YouTube.com/watch?v=1"), "www.youtube.com"),
            (Some("android-app://com.google.android.gm/"), "com.google.android.gm"),
            (Some("file:///etc/passwd"), "(direct)"),
        ] {
            assert_eq!(referrer_host(referrer), want, "{referrer:?}");
        }
    }

    #[test]
    fn params_take_the_first_non_empty_value_trimmed_and_bounded() {
        let p = pairs(&[("sub1", " "), ("sub_id", " yt-42 "), ("subid", "other"), ("utm_source", &"x".repeat(300))]);
        assert_eq!(param(&p, SUB_ID_PARAMS).as_deref(), Some("yt-42"));
        assert_eq!(param(&p, &["utm_source"]).map(|v| v.len()), Some(255));
        assert_eq!(param(&p, &["utm_medium"]), None);
    }
}
