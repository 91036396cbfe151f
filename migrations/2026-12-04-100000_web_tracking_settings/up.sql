-- Per-organization web-tracking settings: the custom attribution parameters the loader and the
-- pixel recognize before the 16 defaults, and the public key that marks the browser-pixel
-- install path. One row per organization, created on the first change.
create table org_web_tracking_settings (
    org_id uuid primary key references organizations (id) on delete cascade,
    attribution_params text,
    pixel_public_key text,
    updated_at timestamptz not null
);
