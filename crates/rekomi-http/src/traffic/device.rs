//! The device class of a User-Agent, with woothee (a maintained port of Project Woothee's
//! dataset): crawlers are `Bot`, smartphones and feature phones `Mobile`, iPads and Android
//! devices without "Mobile" `Tablet`, everything else `Desktop`. An empty User-Agent is a
//! script, counted as a `Bot`.

use rekomi_domain::traffic::DeviceClass;

/// Classifies `user_agent`.
pub fn classify(user_agent: &str) -> DeviceClass {
    let ua = user_agent.trim();
    if ua.is_empty() || woothee::is_crawler(ua) {
        return DeviceClass::Bot;
    }
    let tablet = ua.contains("iPad") || ua.contains("Tablet") || (ua.contains("Android") && !ua.contains("Mobile"));
    match woothee::parser::Parser::new().parse(ua).map(|r| r.category) {
        Some("crawler") => DeviceClass::Bot,
        _ if tablet => DeviceClass::Tablet,
        Some("smartphone" | "mobilephone") => DeviceClass::Mobile,
        _ => DeviceClass::Desktop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_class_table() {
        let table = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", DeviceClass::Desktop),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", DeviceClass::Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", DeviceClass::Mobile),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", DeviceClass::Mobile),
            ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", DeviceClass::Tablet),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", DeviceClass::Tablet),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", DeviceClass::Bot),
            ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", DeviceClass::Bot),
            ("", DeviceClass::Bot),
            ("curl/8.5.0", DeviceClass::Desktop),
        ];
        for (ua, want) in table {
            assert_eq!(classify(ua), want, "{ua}");
        }
    }
}
