/* Rekomi tracking loader (GET /api/v1/r/loader.js). Paste the install snippet on every page:
 *   <script async src=".../api/v1/r/loader.js" data-program-id="..." data-rkmi-params="a,b"></script>
 * On a page whose URL carries an attribution parameter it records a click, keeps the click id
 * and slug in a first-party cookie for the program's cookie window, and exposes window.Rekomi:
 *   Rekomi.referral  the click id, for Stripe Checkout's client_reference_id or metadata.rekomi_ref
 *   Rekomi.slug      the referring link's slug
 *   Rekomi.ready     a promise resolved once the visit is recorded (or there was nothing to record)
 *   Rekomi.convert({email, name}) and Rekomi.identify({email}): record a lead for the referral.
 * FirstTouch programs keep the first referral within the window; LastTouch programs replace it.
 */
(function () {
  "use strict";
  // The spec's defaults, in priority order (kept equal to the server's list by a unit test).
  var DEFAULTS = ["via", "ref", "fpr", "aff", "rfsn", "a_aid", "awc", "sscid", "cjevent", "irclickid", "partner_key", "affid", "affiliate_id", "affcode", "idev", "mbsy"];
  var PARAM = /^[a-z0-9_-]{2,32}$/;

  var script = document.currentScript;
  if (!script || window.Rekomi) { return; }
  var programId = script.getAttribute("data-program-id") || "";
  var base = new URL(script.src, location.href).origin;
  var custom = (script.getAttribute("data-rkmi-params") || "").split(",").map(function (p) { return p.trim(); }).filter(function (p) { return PARAM.test(p); });
  var order = custom.filter(function (p) { return DEFAULTS.indexOf(p) < 0; }).concat(DEFAULTS);
  var cookieName = "rkmi_" + programId.replace(/[^A-Za-z0-9]/g, "");

  function readCookie() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === cookieName) {
        var fields;
        // A cookie someone else wrote may not decode: it is then no referral.
        try { fields = decodeURIComponent(parts[i].slice(eq + 1)).split("|"); } catch (e) { return null; }
        if (fields.length >= 2 && fields[0].indexOf("rkc_") === 0) { return { click: fields[0], slug: fields[1] }; }
      }
    }
    return null;
  }

  function writeCookie(click, slug, days) {
    var value = encodeURIComponent(click + "|" + slug + "|" + Date.now());
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = cookieName + "=" + value + "; Max-Age=" + (days * 86400) + "; Path=/; SameSite=Lax" + secure;
  }

  function post(path, body) {
    return fetch(base + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      keepalive: true,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    });
  }

  function beacon(path, body) {
    var text = JSON.stringify(body);
    // text/plain needs no CORS preflight, so the beacon survives the page unloading.
    if (navigator.sendBeacon && navigator.sendBeacon(base + path, new Blob([text], { type: "text/plain" }))) {
      return Promise.resolve();
    }
    return post(path, body).then(function () {}, function () {});
  }

  // The query, then the fragment (Hash links: brand.com/#via=jane).
  function hasReferralParam() {
    var sources = [new URLSearchParams(location.search), new URLSearchParams(location.hash.slice(1))];
    return sources.some(function (query) {
      return order.some(function (p) { var v = query.get(p); return v !== null && v.trim() !== ""; });
    });
  }

  var stored = readCookie();
  var Rekomi = {
    programId: programId,
    referral: stored ? stored.click : null,
    slug: stored ? stored.slug : null,
    convert: function (who) {
      who = who || {};
      if (!Rekomi.slug || !who.email) { return Promise.resolve(false); }
      if (!Rekomi.referral) { return Promise.resolve(false); }
      var body = { slug: Rekomi.slug, email: String(who.email), programId: programId, clickId: Rekomi.referral };
      if (who.name) { body.name = String(who.name); }
      return beacon("/api/v1/r/lead/signup", body).then(function () { return true; });
    },
    identify: function (who) {
      return Rekomi.convert({ email: (who || {}).email });
    }
  };
  window.Rekomi = Rekomi;

  Rekomi.ready = !programId || !hasReferralParam()
    ? Promise.resolve(Rekomi)
    : post("/api/v1/r/click", { programId: programId, url: location.href, referrer: document.referrer || null })
      .then(function (res) { return res.status === 200 ? res.json() : null; })
      .then(function (click) {
        if (!click) { return Rekomi; }
        if (click.attributionModel === "FirstTouch" && stored) { return Rekomi; }
        writeCookie(click.clickId, click.slug, click.cookieWindowDays);
        Rekomi.referral = click.clickId;
        Rekomi.slug = click.slug;
        return Rekomi;
      }, function () { return Rekomi; });
})();
