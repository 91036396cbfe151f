-- Traffic: programs name the landing page their Short links redirect to; clicks are recorded
-- (by a batched sink, so the table has no foreign keys to check per row); conversions keep the
-- click they came from.
alter table programs add column landing_url text;

alter table conversions add column click_id uuid;

create table clicks (
    id uuid primary key,
    org_id uuid not null,
    program_id uuid not null,
    affiliate_id uuid not null,
    link_id uuid not null,
    clicked_at timestamptz not null,
    landing_url text,
    referrer_host text not null,
    utm_source text,
    utm_medium text,
    utm_campaign text,
    sub_id text,
    country text,
    device text not null check (device in ('Mobile', 'Tablet', 'Desktop', 'Bot')),
    visitor_hash text not null,
    is_unique boolean not null,
    is_bot boolean not null
);
-- Reports and the daily per-click aggregation read an affiliate's clicks by time.
create index clicks_org_affiliate_time_idx on clicks (org_id, affiliate_id, clicked_at);

-- The salt of each day's visitor hashes, shared by every server process so they agree on who
-- is the same visitor; a day's salt is deleted two days later, so an old hash cannot be
-- brute-forced back to an IP address.
create table visitor_salts (
    day date primary key,
    salt text not null
);

-- Short links (/r/{slug}) name no organization: their slug is looked up across all of them.
create index affiliate_links_slug_idx on affiliate_links (lower(slug));
